/**
 * What `fastify-plugin` does, without the dependency: name a plugin, declare the plugins it needs
 * (fastify checks them at registration), and optionally skip encapsulation so its hooks and
 * decorators apply to the whole API (auth, errors, metrics).
 */
import type { FastifyPluginAsync } from 'fastify';

export function definePlugin<T extends Record<string, unknown>>(
  fn: FastifyPluginAsync<T>,
  meta: { name: string; dependencies?: string[]; decorators?: { fastify?: string[]; request?: string[] }; global?: boolean },
): FastifyPluginAsync<T> {
  const f = fn as FastifyPluginAsync<T> & Record<symbol, unknown>;
  f[Symbol.for('plugin-meta')] = { name: meta.name, dependencies: meta.dependencies, decorators: meta.decorators };
  f[Symbol.for('fastify.display-name')] = meta.name;
  if (meta.global) f[Symbol.for('skip-override')] = true;
  return f;
}
