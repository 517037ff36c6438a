/**
 * The web UI (replay-ui/web, built by Vite into `dir`) at /ui/, and what it needs to log in.
 *
 *   GET /              → 302 /ui/
 *   GET /ui/*          a built file (hashed assets cached for a year), else index.html (client-side
 *                      routes such as /ui/sessions/<id> and /ui/callback); a missing file with an
 *                      extension is a 404, not index.html, so a broken asset link shows as broken
 *   GET /api/ui/config where to log in: issuer, client id, scope (no secret: the UI is a public client)
 *
 * All three are public (PUBLIC_ROUTES): the files hold no data; every call the UI makes for data
 * carries the user's token and goes through the role guard like any other client's.
 */
import { existsSync } from 'node:fs';
import { join, normalize, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import { Type } from '@sinclair/typebox';
import { definePlugin } from '../plugin.ts';
import { withProblems } from '../schemas.ts';
import { apiError } from '../errors.ts';

export interface UiOptions extends Record<string, unknown> {
  /** The Vite build output (index.html + assets/). */
  dir: string;
  /** OIDC issuer the UI logs in at (the dev issuer in the embedded mode). */
  issuer: string;
  clientId: string;
  scope: string;
}

export const UiConfigSchema = Type.Object(
  {
    issuer: Type.String(),
    client_id: Type.String(),
    scope: Type.String(),
    /** Path (on the API's origin) the issuer redirects back to with the code. */
    redirect_path: Type.String(),
  },
  { additionalProperties: false },
);

/**
 * The UI runs only its own bundled code: no inline script, no third-party origin except the
 * issuer's (discovery and token calls). React sets styles through the CSSOM, which style-src
 * does not restrict, so no 'unsafe-inline' is needed.
 */
export function uiCsp(issuer: string): string {
  let issuerOrigin = '';
  try {
    issuerOrigin = new URL(issuer).origin;
  } catch {
    // not a URL: only 'self' is allowed
  }
  const extra = issuerOrigin ? ` ${issuerOrigin}` : '';
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${extra}`,
    `form-action 'self'${extra}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
  ].join('; ');
}

export const uiPlugin = definePlugin<UiOptions>(
  async (app, opts) => {
    if (!existsSync(join(opts.dir, 'index.html'))) {
      throw apiError('API_ERR_CONFIG', `the web UI is not built (${opts.dir}/index.html missing): run \`npm run build:ui\``);
    }
    // serve: false — only our one wildcard route below answers, so the route inventory stays exact.
    await app.register(fastifyStatic, { root: opts.dir, serve: false });
    const csp = uiCsp(opts.issuer);

    app.get('/', { schema: { response: withProblems({}) } }, async (_request, reply) => reply.redirect('/ui/', 302));

    app.get<{ Params: { '*': string } }>('/ui/*', { schema: { response: withProblems({}) } }, async (request, reply) => {
      const rel = normalize(decodeURIComponent(request.params['*'] ?? '')).replace(/^([/\\])+/, '');
      if (rel.split(sep).includes('..')) throw apiError('API_ERR_NOT_FOUND', 'no such file');
      reply.header('content-security-policy', csp).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
      const file = rel === '' || rel === '.' ? 'index.html' : rel;
      if (file !== 'index.html' && existsSync(join(opts.dir, file))) {
        const immutable = file.startsWith(`assets${sep}`);
        return reply.sendFile(file, { cacheControl: true, maxAge: immutable ? 365 * 86400_000 : 0, immutable });
      }
      if (file !== 'index.html' && /\.[A-Za-z0-9]+$/.test(file)) throw apiError('API_ERR_NOT_FOUND', 'no such file');
      // A client-side route: the app decides what to show. Never cached, so a rebuild shows at once.
      reply.header('x-frame-options', 'DENY');
      return reply.sendFile('index.html', { cacheControl: false, lastModified: false, etag: false }).header('cache-control', 'no-cache');
    });

    app.get('/api/ui/config', { schema: { response: withProblems({ 200: UiConfigSchema }) } }, async () => ({
      issuer: opts.issuer,
      client_id: opts.clientId,
      scope: opts.scope,
      redirect_path: '/ui/callback',
    }));
  },
  { name: 'vigil-ui', dependencies: ['vigil-problems', 'vigil-auth'] },
);
