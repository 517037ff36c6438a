/**
 * Local sign-in of the embedded dev issuer: the OAuth 2.0 authorization code flow with PKCE
 * (RFC 6749 §4.1, RFC 7636 S256 only) for one registered public client, the web UI.
 *
 *   GET  /oauth/authorize  checks the request, shows the login form
 *   POST /oauth/authorize  checks the admin password, redirects to the UI with a one-time code
 *   POST /oauth/token      exchanges code + code_verifier for an access token signed by the dev issuer
 *
 * The routes are public (PUBLIC_ROUTES): they are how a token is obtained. Errors follow the OAuth
 * spec, not problem+json: an unknown client or redirect URI gets an error page and is never
 * redirected to (§4.1.2.1); anything else goes back to the client as `error=` (authorize) or as
 * a JSON `{ error, error_description }` (token, §5.2). The password never reaches a log or a response.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { DevIssuer } from '@vigil/identity/dev-issuer';
import { definePlugin } from '../plugin.ts';
import { ADMIN_GROUPS, type LocalAdmin } from '../login/local-admin.ts';
import { CodeStore } from '../login/codes.ts';
import { CHALLENGE, verifierMatches } from '../login/pkce.ts';
import { CARRIED, errorPage, loginPage, type LoginPage } from '../login/page.ts';
import { FailureLimiter } from '../login/limiter.ts';

export interface LoginOptions extends Record<string, unknown> {
  devIssuer: DevIssuer;
  admin: LocalAdmin;
  /** The UI's client id (api.ui.client_id). */
  clientId: string;
  /** `aud` of issued access tokens: the audience the API and gateway verify (identity.audience). */
  audience: string;
  tokenTtlS?: number;
}

/** Where the UI receives the code: the only redirect URI registered for the client. */
export const CALLBACK_PATH = '/ui/callback';

const OAuthErrorSchema = Type.Object({ error: Type.String(), error_description: Type.String() }, { additionalProperties: false });
const TokenSchema = Type.Object(
  { access_token: Type.String(), token_type: Type.Literal('Bearer'), expires_in: Type.Integer(), scope: Type.String() },
  { additionalProperties: false },
);
const Params = Type.Record(Type.String(), Type.String());

class OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status = 400,
  ) {
    super(description);
  }
}

function sendPage(reply: FastifyReply, page: LoginPage, status = 200): FastifyReply {
  return reply
    .code(status)
    .header('content-security-policy', page.csp)
    .header('cache-control', 'no-store')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .type('text/html; charset=utf-8')
    .send(page.html);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export const loginPlugin = definePlugin<LoginOptions>(
  async (app, opts) => {
    const redirectUri = `${opts.devIssuer.issuer}${CALLBACK_PATH}`;
    const ttl = opts.tokenTtlS ?? 3600;
    const codes = new CodeStore();
    const limiter = new FailureLimiter();

    // Forms only in this scope (RFC 6749 §4.1.3 / HTML forms); the rest of the API stays JSON.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });

    app.setErrorHandler((error: FastifyError | OAuthError, request: FastifyRequest, reply: FastifyReply) => {
      const status = error instanceof OAuthError ? error.status : typeof error.statusCode === 'number' && error.statusCode < 500 ? 400 : 500;
      if (status >= 500) request.log.error({ err: { type: error.name, message: error.message } }, 'sign-in failed');
      const code = error instanceof OAuthError ? error.error : status >= 500 ? 'server_error' : 'invalid_request';
      const description = status >= 500 ? 'internal error; see the server log' : error instanceof OAuthError ? error.description : error.message;
      if (request.routeOptions.url === '/oauth/token') {
        return reply.code(status).header('cache-control', 'no-store').send({ error: code, error_description: description });
      }
      return sendPage(reply, errorPage(`${code}: ${description}`), status);
    });

    /** Checks §4.1.2.1 requires before anything may be redirected to the client. */
    const checkClient = (p: Record<string, string | undefined>) => {
      if (p.client_id !== opts.clientId) throw new OAuthError('invalid_client', 'unknown client_id', 400);
      if (p.redirect_uri !== redirectUri) {
        throw new OAuthError('invalid_request', `redirect_uri is not registered for this client (open the UI at ${opts.devIssuer.issuer}/ui/)`, 400);
      }
    };
    /** Other problems go back to the client, which shows them. */
    const requestError = (p: Record<string, string | undefined>): string | undefined => {
      if (p.response_type !== 'code') return 'unsupported_response_type';
      if (p.code_challenge_method !== 'S256' || !p.code_challenge || !CHALLENGE.test(p.code_challenge)) return 'invalid_request';
      return undefined;
    };
    const back = (params: Record<string, string>, state: string | undefined) => {
      const u = new URL(redirectUri);
      for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
      if (state !== undefined) u.searchParams.set('state', state);
      return u.toString();
    };

    app.get<{ Querystring: Record<string, string> }>(
      '/oauth/authorize',
      { schema: { querystring: Params } },
      async (request, reply) => {
        const p = request.query;
        checkClient(p);
        const err = requestError(p);
        if (err) return reply.redirect(back({ error: err, error_description: 'PKCE with S256 and response_type=code are required' }, p.state), 303);
        return sendPage(reply, loginPage(p));
      },
    );

    app.post<{ Body: Record<string, string> }>('/oauth/authorize', { schema: { body: Params } }, async (request, reply) => {
      const p = request.body;
      checkClient(p);
      const err = requestError(p);
      if (err) return reply.redirect(back({ error: err, error_description: 'PKCE with S256 and response_type=code are required' }, p.state), 303);
      const carried = Object.fromEntries(CARRIED.filter((k) => p[k] !== undefined).map((k) => [k, p[k]!]));
      const user = str(p.username) ?? '';
      if (limiter.blocked(request.ip)) {
        request.log.warn({ user }, 'sign-in refused: too many failures from this address');
        return sendPage(reply, loginPage(carried, { error: 'Too many failed sign-ins; wait a minute and try again.', user }), 429);
      }
      if (!(await opts.admin.verify(user, str(p.password) ?? ''))) {
        limiter.fail(request.ip);
        request.log.info({ user }, 'sign-in failed: wrong user or password');
        return sendPage(reply, loginPage(carried, { error: 'Wrong user name or password.', user }), 401);
      }
      limiter.succeed(request.ip);
      const code = codes.issue({ client_id: opts.clientId, redirect_uri: redirectUri, code_challenge: p.code_challenge!, sub: opts.admin.user, roles: opts.admin.roles });
      request.log.info({ user }, 'sign-in succeeded');
      return reply.header('cache-control', 'no-store').redirect(back({ code }, p.state), 303);
    });

    app.post<{ Body: Record<string, string> }>(
      '/oauth/token',
      { schema: { response: { 200: TokenSchema, '4xx': OAuthErrorSchema, '5xx': OAuthErrorSchema } } },
      async (request, reply) => {
        const p = (request.body ?? {}) as Record<string, unknown>;
        if (str(p.grant_type) !== 'authorization_code') throw new OAuthError('unsupported_grant_type', 'only authorization_code is supported');
        if (str(p.client_id) !== opts.clientId) throw new OAuthError('invalid_client', 'unknown client_id', 401);
        const code = str(p.code);
        const verifier = str(p.code_verifier);
        if (!code || !verifier) throw new OAuthError('invalid_request', 'code and code_verifier are required');
        const grant = codes.redeem(code);
        // One answer for every mismatch (§5.2 invalid_grant): which part was wrong is not the caller's business.
        if (!grant || grant.client_id !== opts.clientId || grant.redirect_uri !== str(p.redirect_uri) || !verifierMatches(verifier, grant.code_challenge)) {
          throw new OAuthError('invalid_grant', 'the code is unknown, expired, already used, or does not match this request');
        }
        const access_token = await opts.devIssuer.mint({ sub: grant.sub, roles: [...grant.roles], groups: [...ADMIN_GROUPS], ttl_s: ttl, audience: opts.audience, actor_kind: 'human' });
        reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
        return { access_token, token_type: 'Bearer' as const, expires_in: ttl, scope: 'openid' };
      },
    );
  },
  { name: 'vigil-login', dependencies: ['vigil-problems', 'vigil-auth'] },
);
