/**
 * Sessions for detector tests and the eval harness: chained exactly as the gateway chains them
 * (schemas' SessionChain), PostgreSQL frames from the decoder fixtures' builders, plus the
 * non-frame events detectors read (approvals, policy blocks). Times are simulated (µs).
 */
import { SessionChain, decode, type ChainInput } from '@vigil/schemas';
import type { LogRecord } from '@vigil/eventlog/types';
import * as m from '../decode/pg/fixtures/builders.ts';
import { queryEventId } from '../decode/pg/decoder.ts';

export interface Who {
  sub: string;
  groups?: string[];
  addr?: string;
  app?: string;
  actor_kind?: 'human' | 'agent';
  target?: string;
}

export type Step =
  | { q: string; rows?: number; error?: string; after_s?: number }
  | { event: Record<string, unknown>; after_s?: number };

export interface BuiltSession {
  session_id: string;
  records: LogRecord[];
  /** event ids by step index (query steps: the Query frame's event id = the query event's id). */
  ids: string[];
  start_us: number;
  end_us: number;
}

export function buildSession(id: string, who: Who, t0_us: number, steps: Step[], options: { end?: boolean } = {}): BuiltSession {
  const chain = new SessionChain(id, { gateway_id: 'gw-eval', gateway_version: '0.1.0' });
  const records: LogRecord[] = [];
  const ids: string[] = [];
  let t = t0_us;
  const push = (input: Record<string, unknown>): string => {
    const r = chain.next({ ...input, time: t } as unknown as ChainInput);
    records.push(input.type === 'frame' ? { key: id, value: r.bytes } : { key: id, value: r.bytes, headers: { type: String(input.type) } });
    return decode(r.bytes).event_id;
  };
  const identity = { sub: who.sub, groups: who.groups ?? [], issuer: 'http://issuer', actor_kind: who.actor_kind ?? 'human', client_addr: who.addr ?? '10.0.0.1:50000' };
  push({
    type: 'session.started', version: 1, ...identity, target_id: who.target ?? 'prod-pg', protocol: 'postgres', target_addr: '10.1.0.5:5432',
    db_name: 'app', db_user: 'app_rw', tls: true, upstream_tls: true, client_app: who.app ?? 'psql',
  });
  for (const st of steps) {
    t += Math.round((st.after_s ?? 1) * 1e6);
    if ('q' in st) {
      const frames = [m.Query(st.q), st.error ? m.ErrorResponse(st.error, 'failed') : m.CommandComplete(`SELECT ${st.rows ?? 1}`), m.ReadyForQuery()];
      ids.push(queryEventId(id, records.length));
      for (const f of frames) {
        push({ type: 'frame', version: 1, direction: f.direction, msg_type: f.msg_type, data: f.data });
        t += 100;
      }
    } else {
      ids.push(push({ version: 1, ...identity, target_id: who.target ?? 'prod-pg', ...st.event }));
    }
  }
  const end_us = t + 1000;
  if (options.end !== false) {
    t = end_us;
    push({ type: 'session.ended', version: 1, reason: 'client_closed', duration_us: end_us - t0_us, bytes_c2s: 0, bytes_s2c: 0, messages_c2s: 0, messages_s2c: 0 });
  }
  return { session_id: id, records, ids, start_us: t0_us, end_us };
}
