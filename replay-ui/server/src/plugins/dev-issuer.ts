/**
 * Discovery and keys of the embedded dev issuer, so that ordinary OIDC tooling (and the gateway in
 * another process) can find the keys. Registered only when a dev issuer is configured.
 */
import type { DevIssuer } from '@vigil/identity/dev-issuer';
import { definePlugin } from '../plugin.ts';
import { DiscoverySchema, JwksSchema, withProblems } from '../schemas.ts';

export const devIssuerPlugin = definePlugin<{ devIssuer: DevIssuer }>(
  async (app, { devIssuer }) => {
    app.get('/.well-known/openid-configuration', { schema: { response: withProblems({ 200: DiscoverySchema }) } }, async () => devIssuer.discovery());
    app.get('/.well-known/jwks.json', { schema: { response: withProblems({ 200: JwksSchema }) } }, async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return devIssuer.jwks();
    });
  },
  { name: 'vigil-dev-issuer', dependencies: ['vigil-problems'] },
);
