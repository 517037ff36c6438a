/** Liveness of the API and reachability of its store, for load balancers (public, no token). */
import type { ClickHouseClient } from '@clickhouse/client';
import { definePlugin } from '../plugin.ts';
import { apiError } from '../errors.ts';
import { HealthSchema, withProblems } from '../schemas.ts';

const PING_TIMEOUT_MS = 2000;

export const healthPlugin = definePlugin<{ store: ClickHouseClient }>(
  async (app, { store }) => {
    app.get('/api/health', { schema: { response: withProblems({ 200: HealthSchema }) } }, async (request) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<{ success: false; error: Error }>((resolve) => {
        timer = setTimeout(() => resolve({ success: false, error: new Error(`no answer in ${PING_TIMEOUT_MS} ms`) }), PING_TIMEOUT_MS);
      });
      const result = await Promise.race([store.ping().catch((error: Error) => ({ success: false as const, error })), timeout]);
      clearTimeout(timer);
      if (!result.success) {
        request.log.warn({ reason: (result as { error?: Error }).error?.message }, 'store ping failed');
        throw apiError('API_ERR_STORE_UNAVAILABLE', 'the analytics store is unreachable');
      }
      return { status: 'ok' };
    });
  },
  { name: 'vigil-health', dependencies: ['vigil-problems'] },
);
