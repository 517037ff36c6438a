/**
 * Authentication and authorisation of every request. Access is declared per route and checked at
 * registration (`guardRoute`, run from an onRoute hook in app.ts): a route either names the roles
 * allowed (`config: { roles: [...] }`) or is on the short PUBLIC_ROUTES list; anything else is
 * refused when it is registered, so a new route cannot become public by accident.
 * Requests to no route at all (404) also need a valid token, so the API cannot be mapped anonymously.
 */
import type { RouteOptions } from 'fastify';
import { IdentityError, type TokenVerifier, type VerifiedIdentity } from '@vigil/identity/types';
import { definePlugin } from '../plugin.ts';
import { apiError } from '../errors.ts';

export const ROLES = ['analyst', 'approver', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Roles allowed on this route; any one suffices. */
    roles?: readonly Role[];
  }
  interface FastifyRequest {
    /** Set by the auth hook on every non-public route; null on public ones. */
    identity: VerifiedIdentity | null;
  }
}

/** The only routes served without a token (method + route pattern). */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set([
  'GET /api/health',
  'GET /metrics',
  'GET /.well-known/openid-configuration',
  'GET /.well-known/jwks.json',
  // The web UI's files and login settings (plugins/ui.ts): no data, the app asks for a token first.
  'GET /',
  'GET /ui/*',
  'GET /api/ui/config',
  // The dev issuer's sign-in (plugins/login.ts): how a browser obtains a token in the first place.
  'GET /oauth/authorize',
  'POST /oauth/authorize',
  'POST /oauth/token',
]);

export function isPublic(method: string, url: string | undefined): boolean {
  if (url === undefined) return false;
  // HEAD is served by the GET handler (fastify's exposeHeadRoutes), so it shares its access.
  return PUBLIC_ROUTES.has(`${method === 'HEAD' ? 'GET' : method} ${url}`);
}

/** Refuse (throw) a route whose access is not declared. Called for every route, HEAD included. */
export function guardRoute(route: Pick<RouteOptions, 'method' | 'url' | 'config'>): void {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const roles = (route.config as { roles?: unknown } | undefined)?.roles;
  const declared = Array.isArray(roles) && roles.length > 0;
  for (const method of methods) {
    if (isPublic(method, route.url)) {
      if (declared) throw new Error(`route ${method} ${route.url} is public; it must not also declare roles`);
      continue;
    }
    if (!declared) {
      throw new Error(`route ${method} ${route.url} declares no roles (config.roles) and is not in PUBLIC_ROUTES: refused`);
    }
    for (const role of roles as unknown[]) {
      if (!(ROLES as readonly unknown[]).includes(role)) throw new Error(`route ${method} ${route.url}: unknown role ${String(role)}`);
    }
  }
}

/** `Authorization: Bearer <token>` (RFC 6750 b64token syntax). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

export const authPlugin = definePlugin<{ verifier: TokenVerifier }>(
  async (app, { verifier }) => {
    app.decorateRequest('identity', null);
    app.addHook('onRequest', async (request) => {
      const { method, url, config } = request.routeOptions;
      if (isPublic(method as string, url)) return;
      const header = request.headers.authorization;
      if (!header) throw apiError('API_ERR_UNAUTHENTICATED', 'missing Authorization: Bearer <token>');
      const m = BEARER.exec(header);
      if (!m) throw apiError('API_ERR_UNAUTHENTICATED', 'Authorization must be a Bearer token');
      let identity: VerifiedIdentity;
      try {
        identity = await verifier.verify(m[1]);
      } catch (err) {
        if (err instanceof IdentityError && err.retriable) {
          request.log.warn({ code: err.code, reason: err.message }, 'token verification unavailable');
          throw apiError('API_ERR_IDENTITY_UNAVAILABLE', 'token verification is temporarily unavailable; retry later', err);
        }
        const code = err instanceof IdentityError ? err.code : 'ID_ERR_MALFORMED';
        // IdentityError messages never contain the token; anything else gets a fixed text.
        const reason = err instanceof IdentityError ? err.message : 'token could not be verified';
        request.log.info({ code }, 'token refused');
        throw apiError('API_ERR_INVALID_TOKEN', `${code}: ${reason}`);
      }
      request.identity = identity;
      const allowed = config.roles;
      // Unmatched requests (404) have no roles: authenticated is enough to learn "not found".
      if (url === undefined || allowed === undefined) return;
      if (!identity.roles.some((r) => (allowed as readonly string[]).includes(r))) {
        throw apiError('API_ERR_FORBIDDEN', `requires one of the roles: ${allowed.join(', ')}`);
      }
    });
  },
  { name: 'vigil-auth', dependencies: ['vigil-problems'], global: true },
);
