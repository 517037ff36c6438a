/**
 * Terminal replay for the player (issue 6), streamed in pages rather than downloaded whole:
 *
 *   GET /api/sessions/:id/terminal                 the recording's frame: channel, size, start,
 *                                                  duration, live, command markers
 *   GET /api/sessions/:id/terminal/events          a page of output events, either `after_seq`
 *                                                  (play on) or `at_us` (seek: the nearest screen
 *                                                  snapshot at or before that offset + the events
 *                                                  after it, so a seek never replays from the start)
 *   GET /api/sessions/:id/terminal/live            server-sent events: catch up from the latest
 *                                                  snapshot (or `after_seq`), then every new row as
 *                                                  ingest stores it, until the session has ended
 *
 * Live views follow the store, not the raw event log: what the player shows is what ingest stored,
 * so whatever masking at rest removes from a recording is never shown live either, and a reconnect
 * with `after_seq` resumes exactly where the last message ended (keyset on seq, nothing missed).
 * Every answer is a `recording.viewed` (view `replay`, or `live` once per live stream).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { ClickHouseClient } from '@clickhouse/client';
import { definePlugin } from '../plugin.ts';
import { sseMessage, sseReply, sseWait } from '../sse.ts';
import type { AccessAudit } from '../access-audit.ts';
import { apiError } from '../errors.ts';
import { SessionParamsSchema, withProblems } from '../schemas.ts';
import { eventsAfter, snapshotBefore, terminalChannels, terminalInfo, type TerminalInfo } from '../terminal-store.ts';
import { storeFailure } from './problems.ts';
import type { Role } from './auth.ts';

const READ_ROLES: readonly Role[] = ['analyst', 'auditor', 'admin'];
const PAGE_DEFAULT = 200;
const PAGE_MAX = 2000;
/** How often a live stream asks the store for new rows, and sends a keep-alive comment. */
const LIVE_POLL_MS = 250;
const LIVE_KEEPALIVE_MS = 15_000;

const Channel = Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffffff }));
const Seq = Type.Integer({ minimum: -1 });

export const TerminalInfoQuerySchema = Type.Object({ channel: Channel }, { additionalProperties: false });
export const TerminalEventsQuerySchema = Type.Object(
  {
    channel: Channel,
    /** Continue after this seq (from `next_after_seq`). */
    after_seq: Type.Optional(Seq),
    /** Seek: µs since the recording's start. */
    at_us: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 10, maximum: PAGE_MAX })),
  },
  { additionalProperties: false },
);
export const TerminalLiveQuerySchema = Type.Object({ channel: Channel, after_seq: Type.Optional(Seq) }, { additionalProperties: false });

const EventSchema = Type.Object(
  { seq: Type.Integer(), t_us: Type.Integer(), code: Type.Union([Type.Literal('o'), Type.Literal('r'), Type.Literal('m'), Type.Literal('x')]), data: Type.String() },
  { additionalProperties: false },
);
const SnapshotSchema = Type.Object(
  { seq: Type.Integer(), t_us: Type.Integer(), cols: Type.Integer(), rows: Type.Integer(), screen: Type.String() },
  { additionalProperties: false },
);
export const TerminalInfoSchema = Type.Object(
  {
    channel: Type.Integer(),
    channels: Type.Array(Type.Integer()),
    cols: Type.Integer(),
    rows: Type.Integer(),
    start_us: Type.Integer(),
    duration_us: Type.Integer(),
    live: Type.Boolean(),
    snapshots: Type.Integer(),
    markers: Type.Array(Type.Object({ seq: Type.Integer(), t_us: Type.Integer(), label: Type.String() }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);
export const TerminalPageSchema = Type.Object(
  { snapshot: Type.Union([SnapshotSchema, Type.Null()]), events: Type.Array(EventSchema), next_after_seq: Type.Union([Type.Integer(), Type.Null()]) },
  { additionalProperties: false },
);
export type TerminalInfoBody = Static<typeof TerminalInfoSchema>;
export type TerminalPageBody = Static<typeof TerminalPageSchema>;

async function fromStore<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw storeFailure(err);
  }
}

/** The recording's frame for a channel (given, or the player's default); 404 when there is none. */
async function frameOf(store: ClickHouseClient, id: string, channel: number | undefined): Promise<TerminalInfo> {
  const channels = await fromStore(terminalChannels(store, id));
  const ch = channel ?? channels[0];
  const info = ch === undefined ? null : await fromStore(terminalInfo(store, id, ch, channels));
  if (!info) throw apiError('API_ERR_NOT_FOUND', 'no terminal recording for this session (or channel)');
  return info;
}

async function sessionEnded(store: ClickHouseClient, id: string): Promise<boolean> {
  const r = await store.query({ query: 'SELECT countIf(isNotNull(ended_at)) AS n FROM sessions FINAL WHERE session_id = {id:String}', query_params: { id }, format: 'JSONEachRow' });
  return Number((await r.json<{ n: string }>())[0]?.n ?? 0) > 0;
}

export const terminalPlugin = definePlugin<{ store: ClickHouseClient; audit?: AccessAudit | undefined }>(
  async (app, { store, audit }) => {
    const view = (request: { identity: unknown; ip: string; socket: { remotePort?: number } }, id: string, kind: 'replay' | 'live', route: string) =>
      audit?.recordView({ identity: request.identity as never, viewed_session_id: id, view: kind, route, client_addr: `${request.ip}:${request.socket.remotePort ?? 0}` });

    app.get<{ Params: { id: string }; Querystring: Static<typeof TerminalInfoQuerySchema> }>(
      '/api/sessions/:id/terminal',
      { config: { roles: READ_ROLES }, schema: { params: SessionParamsSchema, querystring: TerminalInfoQuerySchema, response: withProblems({ 200: TerminalInfoSchema }) } },
      async (request) => {
        audit?.assertAvailable();
        const info = await frameOf(store, request.params.id, request.query.channel);
        view(request, request.params.id, 'replay', 'GET /api/sessions/:id/terminal');
        return info;
      },
    );

    app.get<{ Params: { id: string }; Querystring: Static<typeof TerminalEventsQuerySchema> }>(
      '/api/sessions/:id/terminal/events',
      { config: { roles: READ_ROLES }, schema: { params: SessionParamsSchema, querystring: TerminalEventsQuerySchema, response: withProblems({ 200: TerminalPageSchema }) } },
      async (request) => {
        const { id } = request.params;
        const q = request.query;
        if (q.at_us !== undefined && q.after_seq !== undefined) throw apiError('API_ERR_BAD_REQUEST', 'give either at_us (seek) or after_seq (next page), not both');
        audit?.assertAvailable();
        const info = await frameOf(store, id, q.channel);
        const snapshot = q.at_us === undefined ? null : await fromStore(snapshotBefore(store, id, info.channel, info.start_us, q.at_us));
        const after = q.after_seq ?? snapshot?.seq ?? -1;
        const page = await fromStore(eventsAfter(store, id, info.channel, info.start_us, after, q.limit ?? PAGE_DEFAULT));
        view(request, id, 'replay', 'GET /api/sessions/:id/terminal/events');
        return { snapshot, ...page };
      },
    );

    app.get<{ Params: { id: string }; Querystring: Static<typeof TerminalLiveQuerySchema> }>(
      '/api/sessions/:id/terminal/live',
      // 200 is text/event-stream: no JSON schema applies to it.
      { config: { roles: READ_ROLES }, schema: { params: SessionParamsSchema, querystring: TerminalLiveQuerySchema, response: withProblems({}) } },
      async (request, reply) => {
        const { id } = request.params;
        audit?.assertAvailable();
        const info = await frameOf(store, id, request.query.channel);
        view(request, id, 'live', 'GET /api/sessions/:id/terminal/live');
        const message = sseMessage;
        async function* stream(stop: AbortSignal): AsyncGenerator<string> {
          yield message('info', info);
          let after = request.query.after_seq ?? -1;
          if (request.query.after_seq === undefined) {
            // Catch up: the latest screen, then everything after it.
            const snapshot = await snapshotBefore(store, id, info.channel, info.start_us, Number.MAX_SAFE_INTEGER - info.start_us);
            if (snapshot) {
              yield message('snapshot', snapshot);
              after = snapshot.seq;
            }
          }
          let lastSent = Date.now();
          let endedSeen = false;
          while (!stop.aborted) {
            let page;
            try {
              page = await eventsAfter(store, id, info.channel, info.start_us, after, PAGE_DEFAULT);
            } catch (err) {
              request.log.error({ err: (err as Error).message, session_id: id }, 'live view: store failed');
              yield message('error', { code: 'API_ERR_STORE_UNAVAILABLE', detail: 'the analytics store is unavailable; reconnect with after_seq' });
              return;
            }
            if (page.events.length > 0) {
              after = page.events.at(-1)!.seq;
              yield message('events', { events: page.events, next_after_seq: after });
              lastSent = Date.now();
              if (page.next_after_seq !== null) continue; // more stored already: no wait
            } else if (endedSeen) {
              // Ingest writes a batch's `sessions` rows just before its `terminal` rows: one more
              // empty poll after the end was seen means the last frames are in and were sent.
              yield message('end', { after_seq: after });
              return;
            } else {
              endedSeen = await sessionEnded(store, id).catch(() => false);
            }
            if (Date.now() - lastSent >= LIVE_KEEPALIVE_MS) {
              yield ': keep-alive\n\n';
              lastSent = Date.now();
            }
            await sseWait(LIVE_POLL_MS, stop);
          }
        }
        return sseReply(request, reply, stream);
      },
    );
  },
  { name: 'vigil-terminal', dependencies: ['vigil-problems', 'vigil-auth'] },
);
