/**
 * Discovery and keys of the embedded dev issuer, so that ordinary OIDC tooling (and the gateway in
 * another process) can find the keys. Registered only when a dev issuer is configured.
 */
import type { DevIssuer } from '@vigil/identity/dev-issuer';
import { definePlugin } from '../plugin.ts';
import { DiscoverySchema, JwksSchema, withProblems } from '../schemas.ts';

export const devIssuerPlugin = definePlugin<{ devIssuer: DevIssuer; login?: boolean }>(
  async (app, { devIssuer, login }) => {
    // With the local sign-in (plugins/login.ts), advertise its endpoints as OIDC discovery does.
    const loginMeta = login
      ? {
          authorization_endpoint: `${devIssuer.issuer}/oauth/authorize`,
          token_endpoint: `${devIssuer.issuer}/oauth/token`,
          response_types_supported: ['code'],
          grant_types_supported: ['authorization_code'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['none'],
        }
      : {};
    app.get('/.well-known/openid-configuration', { schema: { response: withProblems({ 200: DiscoverySchema }) } }, async () => ({ ...devIssuer.discovery(), ...loginMeta }));
    app.get('/.well-known/jwks.json', { schema: { response: withProblems({ 200: JwksSchema }) } }, async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return devIssuer.jwks();
    });
  },
  { name: 'vigil-dev-issuer', dependencies: ['vigil-problems'] },
);
