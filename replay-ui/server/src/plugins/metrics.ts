/**
 * Prometheus metrics: default process metrics plus HTTP request counters and latency, labelled by
 * route pattern (never the raw URL, which would carry session ids and explode cardinality).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { Type } from '@sinclair/typebox';
import { definePlugin } from '../plugin.ts';
import { withProblems } from '../schemas.ts';

function reuse<T extends Metric>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export const metricsPlugin = definePlugin<{ registry?: Registry }>(
  async (app, opts) => {
    const registry = opts.registry ?? new Registry();
    // The CLI's registry may already collect process metrics; registering them twice throws.
    if (!registry.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics({ register: registry });
    const requests = reuse(registry, 'vigil_api_http_requests_total', () =>
      new Counter({ name: 'vigil_api_http_requests_total', help: 'API requests by method, route and status', labelNames: ['method', 'route', 'status_code'], registers: [registry] }),
    );
    const duration = reuse(registry, 'vigil_api_http_request_duration_seconds', () =>
      new Histogram({
        name: 'vigil_api_http_request_duration_seconds',
        help: 'API request latency by method and route',
        labelNames: ['method', 'route'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers: [registry],
      }),
    );
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      requests.inc({ method: request.method, route, status_code: String(reply.statusCode) });
      duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    });
    app.get('/metrics', { schema: { response: withProblems({ 200: Type.String() }) } }, async (_request, reply) => {
      reply.type(registry.contentType);
      return registry.metrics();
    });
  },
  { name: 'vigil-metrics', dependencies: ['vigil-problems'], global: true },
);
