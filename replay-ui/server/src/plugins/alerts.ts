/**
 * `GET /api/alerts`: detection alerts (issue 5) for analysts, auditors and admins, newest first,
 * filtered by alert id, identity, rule (exact or prefix `bulk_read.*`), severity (at least), session, target
 * and time range; keyset pagination on (time, alert_id). Schemas, store query and route in one file:
 * the feature is one route.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { ClickHouseClient } from '@clickhouse/client';
import type { ApiConfig } from '../config.ts';
import { definePlugin } from '../plugin.ts';
import { apiError } from '../errors.ts';
import { withProblems } from '../schemas.ts';
import { parseTimeParam } from '../sessions-store.ts';
import { storeFailure } from './problems.ts';
import type { Role } from './auth.ts';

const READ_ROLES: readonly Role[] = ['analyst', 'auditor', 'admin'];
const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;

export const ListAlertsQuerySchema = Type.Object(
  {
    /** One alert (the UI's detail page). */
    alert_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    sub: Type.Optional(Type.String({ minLength: 1 })),
    rule: Type.Optional(Type.String({ minLength: 1, pattern: '^[a-z_.]+\\*?$' })),
    min_severity: Type.Optional(Type.Union(SEVERITIES.map((s) => Type.Literal(s)))),
    session_id: Type.Optional(Type.String({ minLength: 1 })),
    target_id: Type.Optional(Type.String({ minLength: 1 })),
    from: Type.Optional(Type.String()),
    to: Type.Optional(Type.String()),
    limit: Type.Optional(Type.Integer({ minimum: 1 })),
    cursor: Type.Optional(Type.String({ pattern: '^\\d+:[0-9a-f]+$' })),
  },
  { additionalProperties: false },
);
type ListAlertsQuery = Static<typeof ListAlertsQuerySchema>;

export const AlertSchema = Type.Object(
  {
    alert_id: Type.String(),
    time: Type.String(),
    rule: Type.String(),
    severity: Type.String(),
    sub: Type.String(),
    groups: Type.Array(Type.String()),
    session_id: Type.String(),
    target_id: Type.String(),
    summary: Type.String(),
    evidence: Type.Array(Type.String()),
    facts: Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Boolean()])),
  },
  { additionalProperties: false },
);

export const AlertListSchema = Type.Object({ items: Type.Array(AlertSchema), next: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });

const iso = (us: bigint): string => `${new Date(Number(us / 1000n)).toISOString().slice(0, 19)}.${String(us % 1_000_000n).padStart(6, '0')}Z`;

async function listAlerts(store: ClickHouseClient, q: ListAlertsQuery, limit: number) {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: limit + 1 };
  if (q.alert_id) (where.push('alert_id = {aid:String}'), (params.aid = q.alert_id));
  if (q.sub) (where.push('sub = {sub:String}'), (params.sub = q.sub));
  if (q.session_id) (where.push('session_id = {sid:String}'), (params.sid = q.session_id));
  if (q.target_id) (where.push('target_id = {tid:String}'), (params.tid = q.target_id));
  if (q.rule?.endsWith('*')) (where.push('startsWith(rule, {rp:String})'), (params.rp = q.rule.slice(0, -1)));
  else if (q.rule) (where.push('rule = {rule:String}'), (params.rule = q.rule));
  if (q.min_severity) (where.push('severity IN {sev:Array(String)}'), (params.sev = SEVERITIES.slice(SEVERITIES.indexOf(q.min_severity))));
  if (q.from) (where.push('toUnixTimestamp64Micro(time) >= {from:Int64}'), (params.from = String(parseTimeParam(q.from, 'from'))));
  if (q.to) (where.push('toUnixTimestamp64Micro(time) < {to:Int64}'), (params.to = String(parseTimeParam(q.to, 'to'))));
  if (q.cursor) {
    const [t, id] = q.cursor.split(':');
    where.push('(toUnixTimestamp64Micro(time), alert_id) < ({ct:Int64}, {cid:String})');
    params.ct = t;
    params.cid = id;
  }
  const r = await store.query({
    query: `SELECT alert_id, toUnixTimestamp64Micro(time) AS t, rule, severity, sub, groups, session_id, target_id, summary, evidence, facts
            FROM alerts FINAL ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY t DESC, alert_id DESC LIMIT {limit:UInt32}`,
    query_params: params,
    format: 'JSONEachRow',
  });
  const rows = await r.json<Record<string, unknown> & { t: string; alert_id: string; facts: string }>();
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(({ t, facts, ...a }) => ({ ...a, time: iso(BigInt(t)), facts: JSON.parse(facts) as Record<string, unknown> })),
    next: rows.length > limit && last ? `${last.t}:${last.alert_id}` : null,
  };
}

export const alertsPlugin = definePlugin<{ store: ClickHouseClient; config: ApiConfig }>(
  async (app, { store, config }) => {
    app.get<{ Querystring: ListAlertsQuery }>(
      '/api/alerts',
      { config: { roles: READ_ROLES }, schema: { querystring: ListAlertsQuerySchema, response: withProblems({ 200: AlertListSchema }) } },
      async (request) => {
        const limit = request.query.limit ?? config.page_size_default;
        if (limit > config.page_size_max) throw apiError('API_ERR_BAD_REQUEST', `limit must be at most ${config.page_size_max}`);
        try {
          return await listAlerts(store, request.query, limit);
        } catch (err) {
          if ((err as { code?: string }).code?.startsWith('API_ERR_')) throw err;
          throw storeFailure(err);
        }
      },
    );
  },
  { name: 'vigil-alerts', dependencies: ['vigil-problems', 'vigil-auth'] },
);
