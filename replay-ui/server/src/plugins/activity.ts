/** `GET /api/activity`: session and block counts over time, by identity and target (the UI's charts). */
import type { ClickHouseClient } from '@clickhouse/client';
import type { ApiConfig } from '../config.ts';
import { definePlugin } from '../plugin.ts';
import { apiError } from '../errors.ts';
import { ActivityQuerySchema, ActivitySchema, withProblems, type ActivityQuery } from '../schemas.ts';
import { parseTimeParam } from '../sessions-store.ts';
import { activity } from '../activity-store.ts';
import { storeFailure } from './problems.ts';
import type { Role } from './auth.ts';

const READ_ROLES: readonly Role[] = ['analyst', 'auditor', 'admin'];
const DAY_US = 86_400_000_000n;
/** A wider window is allowed, but not one so wide that a typo scans years of data by the minute. */
const MAX_SPAN_US = 366n * DAY_US;

export const activityPlugin = definePlugin<{ store: ClickHouseClient; config: ApiConfig }>(
  async (app, { store }) => {
    app.get<{ Querystring: ActivityQuery }>(
      '/api/activity',
      { config: { roles: READ_ROLES }, schema: { querystring: ActivityQuerySchema, response: withProblems({ 200: ActivitySchema }) } },
      async (request) => {
        const q = request.query;
        const to = q.to === undefined ? BigInt(Date.now()) * 1000n : parseTimeParam(q.to, 'to');
        const from = q.from === undefined ? to - DAY_US : parseTimeParam(q.from, 'from');
        if (from >= to) throw apiError('API_ERR_BAD_REQUEST', 'from must be before to');
        if (to - from > MAX_SPAN_US) throw apiError('API_ERR_BAD_REQUEST', 'the window may span at most 366 days');
        try {
          return await activity(store, { from_us: from, to_us: to, buckets: q.buckets ?? 48, sub: q.sub, target_id: q.target_id });
        } catch (err) {
          throw storeFailure(err);
        }
      },
    );
  },
  { name: 'vigil-activity', dependencies: ['vigil-problems', 'vigil-auth'] },
);
