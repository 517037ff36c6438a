/**
 * Live view of a PostgreSQL session's statements (issue 6, "Live view"):
 *
 *   GET /api/sessions/:id/queries/live[?after_seq=N]   server-sent events
 *
 * Catches up from the store (every statement after `after_seq`, with verdicts, pages of 200), then
 * polls for new ones until the session has ended; a reconnect with `after_seq` = the last seq received
 * resumes without gaps or repeats. The store is fed from the event log by ingest, so what is shown is
 * what is stored (masked at rest), about a second behind the wire. Events: `queries` ({ queries,
 * next_after_seq }), `end`, `error`; comments as keep-alives. Each stream is one `recording.viewed`
 * (view `live`).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { ClickHouseClient } from '@clickhouse/client';
import { definePlugin } from '../plugin.ts';
import { sseMessage, sseReply, sseWait } from '../sse.ts';
import { apiError } from '../errors.ts';
import { SessionParamsSchema, withProblems } from '../schemas.ts';
import { getSession, listQueries } from '../sessions-store.ts';
import { storeFailure } from './problems.ts';
import type { AccessAudit } from '../access-audit.ts';
import type { Role } from './auth.ts';

const READ_ROLES: readonly Role[] = ['analyst', 'auditor', 'admin'];
const PAGE = 200;
const POLL_MS = 250;
const KEEPALIVE_MS = 15_000;

const LiveQuerySchema = Type.Object({ after_seq: Type.Optional(Type.Integer({ minimum: -1 })) }, { additionalProperties: false });

export const queriesLivePlugin = definePlugin<{ store: ClickHouseClient; audit?: AccessAudit | undefined }>(
  async (app, { store, audit }) => {
    app.get<{ Params: { id: string }; Querystring: Static<typeof LiveQuerySchema> }>(
      '/api/sessions/:id/queries/live',
      // 200 is text/event-stream: no JSON schema applies to it.
      { config: { roles: READ_ROLES }, schema: { params: SessionParamsSchema, querystring: LiveQuerySchema, response: withProblems({}) } },
      async (request, reply) => {
        const { id } = request.params;
        audit?.assertAvailable();
        let session;
        try {
          session = await getSession(store, id);
        } catch (err) {
          throw storeFailure(err);
        }
        if (!session) throw apiError('API_ERR_NOT_FOUND', 'no such session');
        audit?.recordView({ identity: request.identity!, viewed_session_id: id, view: 'live', route: 'GET /api/sessions/:id/queries/live', client_addr: `${request.ip}:${request.socket.remotePort ?? 0}` });
        const message = sseMessage;
        async function* stream(stop: AbortSignal): AsyncGenerator<string> {
          let after = request.query.after_seq ?? -1;
          let lastSent = Date.now();
          let endedSeen = false;
          while (!stop.aborted) {
            let page;
            try {
              page = await listQueries(store, id, { after, limit: PAGE });
            } catch (err) {
              request.log.error({ err: (err as Error).message, session_id: id }, 'live view: store failed');
              yield message('error', { code: 'API_ERR_STORE_UNAVAILABLE', detail: 'the analytics store is unavailable; reconnect with after_seq' });
              return;
            }
            if (page.queries.length > 0) {
              after = page.queries.at(-1)!.seq;
              yield message('queries', { queries: page.queries, next_after_seq: after });
              lastSent = Date.now();
              if (page.next !== null) continue; // more stored already: no wait
            } else if (endedSeen) {
              // Ingest lands a batch's statements with its session rows: one more empty poll after
              // the end was seen means the last statements were sent.
              yield message('end', { after_seq: after });
              return;
            } else {
              endedSeen = (await getSession(store, id).catch(() => undefined))?.ended_at != null;
            }
            if (Date.now() - lastSent >= KEEPALIVE_MS) {
              yield ': keep-alive\n\n';
              lastSent = Date.now();
            }
            await sseWait(POLL_MS, stop);
          }
        }
        return sseReply(request, reply, stream);
      },
    );
  },
  { name: 'vigil-queries-live', dependencies: ['vigil-problems', 'vigil-auth'] },
);
