/** Who the caller is, as the API sees their token: the UI shows it and hides what the roles do not allow. */
import { Type } from '@sinclair/typebox';
import { definePlugin } from '../plugin.ts';
import { withProblems } from '../schemas.ts';
import { ROLES } from './auth.ts';

export const MeSchema = Type.Object(
  {
    sub: Type.String(),
    issuer: Type.String(),
    roles: Type.Array(Type.String()),
    groups: Type.Array(Type.String()),
    actor_kind: Type.String(),
    /** Token expiry, seconds since the epoch (null when the token has none). */
    exp: Type.Union([Type.Integer(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const mePlugin = definePlugin(
  async (app) => {
    app.get('/api/me', { config: { roles: ROLES }, schema: { response: withProblems({ 200: MeSchema }) } }, async (request) => {
      const id = request.identity!;
      return { sub: id.sub, issuer: id.issuer, roles: id.roles, groups: id.groups, actor_kind: id.actor_kind, exp: id.exp ?? null };
    });
  },
  { name: 'vigil-me', dependencies: ['vigil-problems', 'vigil-auth'] },
);
