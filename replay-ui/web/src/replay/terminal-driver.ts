/**
 * Terminal drivers: where the player's events come from. The recorded driver pages through the
 * API (GET /api/sessions/:id/terminal/events) and seeks from the stored snapshots; the live
 * driver follows GET /api/sessions/:id/terminal/live (server-sent events). Neither holds a whole
 * recording: the player asks for pages as it plays. Views never fetch by themselves.
 */
import { api } from '../api/client.ts';
import type { TerminalInfoBody, TerminalPageBody } from '../../../server/src/plugins/terminal.ts';
import { followSse } from './sse.ts';

export type TerminalInfo = TerminalInfoBody;
export type TerminalPage = TerminalPageBody;
export type TerminalEvent = TerminalPageBody['events'][number];
export type TerminalSnapshot = NonNullable<TerminalPageBody['snapshot']>;

export interface TerminalDriver {
  info(): Promise<TerminalInfo>;
  /** The nearest snapshot at or before `at_us` and a page of the events after it. */
  seek?(at_us: number): Promise<TerminalPage>;
  /** The page of events after `after_seq`. */
  next(after_seq: number): Promise<TerminalPage>;
}

const PAGE = 300;
/** The first page of a seek is small: it is what stands between a click and the first frame. */
const FIRST_PAGE = 100;

export function recordedTerminalDriver(sessionId: string, channel?: number): TerminalDriver {
  const base = `/api/sessions/${encodeURIComponent(sessionId)}/terminal`;
  return {
    info: () => api<TerminalInfo>(base, { channel }),
    seek: (at_us) => api<TerminalPage>(`${base}/events`, { channel, at_us: Math.max(0, Math.round(at_us)), limit: FIRST_PAGE }),
    next: (after_seq) => api<TerminalPage>(`${base}/events`, { channel, after_seq, limit: PAGE }),
  };
}

export interface LiveHandlers {
  info(info: TerminalInfo): void;
  snapshot(s: TerminalSnapshot): void;
  events(events: TerminalEvent[]): void;
  end(): void;
  error(message: string): void;
}

/**
 * Follow a live session. Reconnects after a dropped connection with `after_seq` = the last seq
 * received, so nothing is missed or repeated. Returns a stop function.
 */
export function followLive(sessionId: string, h: LiveHandlers, channel?: number): () => void {
  let after: number | undefined;
  const url = () => {
    const qs = new URLSearchParams();
    if (channel !== undefined) qs.set('channel', String(channel));
    if (after !== undefined) qs.set('after_seq', String(after));
    return `/api/sessions/${encodeURIComponent(sessionId)}/terminal/live?${qs}`;
  };
  return followSse(
    url,
    (m) => {
      const data = JSON.parse(m.data);
      if (m.event === 'info') h.info(data as TerminalInfo);
      else if (m.event === 'snapshot') (h.snapshot(data as TerminalSnapshot), (after = (data as TerminalSnapshot).seq));
      else if (m.event === 'events') {
        const events = (data as { events: TerminalEvent[] }).events;
        if (events.length > 0) after = events[events.length - 1]!.seq;
        h.events(events);
      } else if (m.event === 'end') {
        h.end();
        return 'done';
      }
    },
    (message) => h.error(message),
  );
}

/** base64 → bytes (output frames are raw bytes; the terminal decodes UTF-8 across frames). */
export function bytesOf(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
