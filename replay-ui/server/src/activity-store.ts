/**
 * Activity over a time window for the charts: sessions started, statements blocked and detection
 * alerts per bucket, and the busiest identities and targets (by sessions and by alerts). Values are
 * bound parameters only.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { isoMicros } from './sessions-store.ts';
import type { Activity } from './schemas.ts';

export interface ActivityFilter {
  from_us: bigint;
  to_us: bigint;
  buckets: number;
  sub?: string;
  target_id?: string;
}

const TOP = 10;

export async function activity(store: ClickHouseClient, f: ActivityFilter): Promise<Activity> {
  const span = f.to_us - f.from_us;
  // Whole seconds, at least one: bucket edges then fall on the same instants for every caller.
  const bucketUs = (((span + BigInt(f.buckets) - 1n) / BigInt(f.buckets) + 999_999n) / 1_000_000n) * 1_000_000n || 1_000_000n;
  const from = (f.from_us / bucketUs) * bucketUs;
  const params: Record<string, unknown> = { from_us: from.toString(), to_us: f.to_us.toString(), bucket_us: bucketUs.toString() };
  const where = ['toUnixTimestamp64Micro(started_at) >= {from_us:Int64}', 'toUnixTimestamp64Micro(started_at) < {to_us:Int64}'];
  if (f.sub !== undefined) (where.push('sub = {sub:String}'), (params.sub = f.sub));
  if (f.target_id !== undefined) (where.push('target_id = {target_id:String}'), (params.target_id = f.target_id));
  const sessionsWhere = where.join(' AND ');
  const q = async <T>(query: string) => (await store.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();

  const alertsWhere = [
    'toUnixTimestamp64Micro(time) >= {from_us:Int64}',
    'toUnixTimestamp64Micro(time) < {to_us:Int64}',
    ...(f.sub !== undefined ? ['sub = {sub:String}'] : []),
    ...(f.target_id !== undefined ? ['target_id = {target_id:String}'] : []),
  ].join(' AND ');
  const [perBucket, blocked, byIdentity, byTarget, alerts, alertsByIdentity, alertsByTarget] = await Promise.all([
    q<{ b: string; n: string }>(`SELECT intDiv(toUnixTimestamp64Micro(started_at) - {from_us:Int64}, {bucket_us:Int64}) AS b, count() AS n
      FROM sessions FINAL WHERE ${sessionsWhere} GROUP BY b`),
    q<{ b: string; n: string }>(`SELECT intDiv(toUnixTimestamp64Micro(time) - {from_us:Int64}, {bucket_us:Int64}) AS b, count() AS n
      FROM events
      WHERE type = 'policy.blocked' AND toUnixTimestamp64Micro(time) >= {from_us:Int64} AND toUnixTimestamp64Micro(time) < {to_us:Int64}
        ${f.sub !== undefined ? 'AND sub = {sub:String}' : ''} ${f.target_id !== undefined ? 'AND target_id = {target_id:String}' : ''}
      GROUP BY b`),
    q<{ key: string; n: string }>(`SELECT sub AS key, count() AS n FROM sessions FINAL WHERE ${sessionsWhere} GROUP BY key ORDER BY n DESC, key LIMIT ${TOP}`),
    q<{ key: string; n: string }>(`SELECT target_id AS key, count() AS n FROM sessions FINAL WHERE ${sessionsWhere} GROUP BY key ORDER BY n DESC, key LIMIT ${TOP}`),
    q<{ b: string; n: string }>(`SELECT intDiv(toUnixTimestamp64Micro(time) - {from_us:Int64}, {bucket_us:Int64}) AS b, count() AS n FROM alerts FINAL WHERE ${alertsWhere} GROUP BY b`),
    q<{ key: string; n: string }>(`SELECT sub AS key, count() AS n FROM alerts FINAL WHERE ${alertsWhere} GROUP BY key ORDER BY n DESC, key LIMIT ${TOP}`),
    q<{ key: string; n: string }>(`SELECT target_id AS key, count() AS n FROM alerts FINAL WHERE ${alertsWhere} GROUP BY key ORDER BY n DESC, key LIMIT ${TOP}`),
  ]);

  const count = Number((f.to_us - from + bucketUs - 1n) / bucketUs);
  const series = Array.from({ length: Math.max(count, 0) }, (_, i) => ({ t: isoMicros(from + BigInt(i) * bucketUs), sessions: 0, blocked: 0, alerts: 0 }));
  for (const r of perBucket) if (series[Number(r.b)]) series[Number(r.b)].sessions = Number(r.n);
  for (const r of blocked) if (series[Number(r.b)]) series[Number(r.b)].blocked = Number(r.n);
  for (const r of alerts) if (series[Number(r.b)]) series[Number(r.b)].alerts = Number(r.n);
  return {
    from: isoMicros(from),
    to: isoMicros(f.to_us),
    bucket_s: Number(bucketUs / 1_000_000n),
    series,
    by_identity: byIdentity.map((r) => ({ key: r.key, sessions: Number(r.n) })),
    by_target: byTarget.map((r) => ({ key: r.key, sessions: Number(r.n) })),
    alerts_by_identity: alertsByIdentity.map((r) => ({ key: r.key, sessions: Number(r.n) })),
    alerts_by_target: alertsByTarget.map((r) => ({ key: r.key, sessions: Number(r.n) })),
  };
}
