/** Session search and detail for analysts and auditors. */
import type { ClickHouseClient } from '@clickhouse/client';
import type { ApiConfig } from '../config.ts';
import { definePlugin } from '../plugin.ts';
import { apiError } from '../errors.ts';
import {
  ListSessionsQuerySchema,
  SessionDetailQuerySchema,
  SessionDetailSchema,
  SessionListSchema,
  SessionParamsSchema,
  withProblems,
  type ListSessionsQuery,
} from '../schemas.ts';
import { getSession, listQueries, listSessions, parseTimeParam } from '../sessions-store.ts';
import { storeFailure } from './problems.ts';
import type { Role } from './auth.ts';
import type { AccessAudit } from '../access-audit.ts';

const READ_ROLES: readonly Role[] = ['analyst', 'auditor', 'admin'];

async function fromStore<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw storeFailure(err);
  }
}

export const sessionsPlugin = definePlugin<{ store: ClickHouseClient; config: ApiConfig; audit?: AccessAudit | undefined }>(
  async (app, { store, config, audit }) => {
    const limitOf = (limit: number | undefined, name: string) => {
      if (limit !== undefined && limit > config.page_size_max) {
        throw apiError('API_ERR_BAD_REQUEST', `${name} must be at most ${config.page_size_max}`);
      }
      return limit;
    };

    app.get<{ Querystring: ListSessionsQuery }>(
      '/api/sessions',
      {
        config: { roles: READ_ROLES },
        schema: { querystring: ListSessionsQuerySchema, response: withProblems({ 200: SessionListSchema }) },
      },
      async (request) => {
        const q = request.query;
        const filter = {
          sub: q.sub,
          target_id: q.target_id,
          protocol: q.protocol,
          actor_kind: q.actor_kind,
          live: q.live,
          has_alerts: q.has_alerts,
          q: q.q,
          from_us: q.from === undefined ? undefined : parseTimeParam(q.from, 'from'),
          to_us: q.to === undefined ? undefined : parseTimeParam(q.to, 'to'),
        };
        const limit = limitOf(q.limit, 'limit') ?? config.page_size_default;
        return fromStore(listSessions(store, filter, { limit, cursor: q.cursor }));
      },
    );

    app.get<{ Params: { id: string }; Querystring: { queries_after?: number; queries_limit?: number } }>(
      '/api/sessions/:id',
      {
        config: { roles: READ_ROLES },
        schema: { params: SessionParamsSchema, querystring: SessionDetailQuerySchema, response: withProblems({ 200: SessionDetailSchema }) },
      },
      async (request) => {
        const { id } = request.params;
        const limit = limitOf(request.query.queries_limit, 'queries_limit') ?? config.page_size_max;
        audit?.assertAvailable();
        const session = await fromStore(getSession(store, id));
        if (!session) throw apiError('API_ERR_NOT_FOUND', 'no such session');
        const { queries, next } = await fromStore(listQueries(store, id, { after: request.query.queries_after, limit }));
        // Every page served is a view (issue 6, access audit): recorded before the response leaves.
        audit?.recordView({ identity: request.identity!, viewed_session_id: id, view: 'replay', route: 'GET /api/sessions/:id', client_addr: `${request.ip}:${request.socket.remotePort ?? 0}` });
        return { session, queries, queries_next: next };
      },
    );
  },
  { name: 'vigil-sessions', dependencies: ['vigil-problems', 'vigil-auth'] },
);
