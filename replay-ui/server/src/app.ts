/**
 * The API server: a Fastify instance assembled from plugins, not yet listening (the CLI listens;
 * tests use `inject()`). Registration order matters only for the global plugins: problems (error
 * shape) → auth (who may call what) → metrics; feature plugins follow and declare what they need.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Registry } from 'prom-client';
import type { TokenVerifier } from '@vigil/identity/types';
import type { DevIssuer } from '@vigil/identity/dev-issuer';
import { parseApiConfig, type ApiConfig, type ApiConfigInput } from './config.ts';
import { problemsPlugin } from './plugins/problems.ts';
import { authPlugin, guardRoute } from './plugins/auth.ts';
import { metricsPlugin } from './plugins/metrics.ts';
import { healthPlugin } from './plugins/health.ts';
import { sessionsPlugin } from './plugins/sessions.ts';
import { devIssuerPlugin } from './plugins/dev-issuer.ts';
import { approvalsPlugin } from './plugins/approvals.ts';
import { alertsPlugin } from './plugins/alerts.ts';
import type { ApprovalBook } from './approvals-book.ts';
import type { AccessAudit } from './access-audit.ts';
import { mePlugin } from './plugins/me.ts';
import { activityPlugin } from './plugins/activity.ts';
import { uiPlugin } from './plugins/ui.ts';
import { loginPlugin } from './plugins/login.ts';
import type { LocalAdmin } from './login/local-admin.ts';
import { asciicastPlugin } from './plugins/asciicast.ts';
import { terminalPlugin } from './plugins/terminal.ts';
import { queriesLivePlugin } from './plugins/queries-live.ts';

export interface ApiRoute {
  method: string;
  url: string;
  roles: readonly string[] | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route as registered (recorded by the same onRoute hook that guards access). */
    apiRoutes: readonly ApiRoute[];
  }
}

export interface BuildApiOptions {
  config: ApiConfig | Partial<ApiConfigInput>;
  verifier: TokenVerifier;
  store: ClickHouseClient;
  devIssuer?: DevIssuer;
  logger?: FastifyBaseLogger;
  /** Prometheus registry to expose on /metrics (the CLI shares one across components). */
  registry?: Registry;
  /** Alias of `registry`. */
  metrics?: Registry;
  /** Approval requests and decisions (the control topic); without it the approvals routes answer 503. */
  approvals?: ApprovalBook;
  /** Access audit (recording.viewed); without it recordings are served unaudited (tests of other concerns only: the CLI always passes one). */
  audit?: AccessAudit;
  /** The built web UI (replay-ui/web/dist) to serve at /ui/; no UI routes without it. */
  uiDir?: string;
  /** The issuer the UI logs in at (identity.issuer); required with uiDir. */
  uiIssuer?: string;
  /** The dev issuer's local admin account: enables its sign-in (needs devIssuer). */
  localAdmin?: LocalAdmin;
  /** `aud` of tokens the local sign-in issues (identity.audience); default 'vigil'. */
  audience?: string;
}

export async function buildApi(options: BuildApiOptions): Promise<FastifyInstance> {
  const config = parseApiConfig(options.config);
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: 64 * 1024,
    // Unknown query parameters are refused, not silently dropped: a mistyped filter must not
    // quietly widen a search over audit data.
    ajv: { customOptions: { removeAdditional: false } },
  }) as unknown as FastifyInstance;

  // Installed before any plugin so that no route, whoever registers it, escapes the check.
  const routes: ApiRoute[] = [];
  app.decorate('apiRoutes', routes);
  app.addHook('onRoute', (route) => {
    guardRoute(route);
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
      routes.push({ method, url: route.url, roles: (route.config as { roles?: readonly string[] } | undefined)?.roles });
    }
  });

  await app.register(problemsPlugin);
  await app.register(authPlugin, { verifier: options.verifier });
  await app.register(metricsPlugin, { registry: options.registry ?? options.metrics });
  await app.register(healthPlugin, { store: options.store });
  await app.register(sessionsPlugin, { store: options.store, config, audit: options.audit });
  await app.register(asciicastPlugin, { store: options.store, audit: options.audit });
  await app.register(terminalPlugin, { store: options.store, audit: options.audit });
  await app.register(queriesLivePlugin, { store: options.store, audit: options.audit });
  await app.register(approvalsPlugin, { book: options.approvals, audit: options.audit });
  await app.register(alertsPlugin, { store: options.store, config });
  await app.register(activityPlugin, { store: options.store, config });
  await app.register(mePlugin);
  const login = Boolean(options.devIssuer && options.localAdmin);
  if (options.devIssuer) await app.register(devIssuerPlugin, { devIssuer: options.devIssuer, login });
  if (options.devIssuer && options.localAdmin) {
    await app.register(loginPlugin, {
      devIssuer: options.devIssuer,
      admin: options.localAdmin,
      clientId: config.ui.client_id,
      audience: options.audience ?? 'vigil',
    });
  }
  if (options.uiDir && config.ui.enabled) {
    await app.register(uiPlugin, {
      dir: options.uiDir,
      issuer: options.uiIssuer ?? options.devIssuer?.issuer ?? '',
      clientId: config.ui.client_id,
      scope: config.ui.scope,
    });
  }
  return app;
}
