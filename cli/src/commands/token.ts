/**
 * `vigil token --sub alice --groups dba --roles analyst --ttl 1h [--agent]`: print a token signed by
 * the dev issuer of this data dir. Only for the embedded/dev setup: with a real OIDC provider,
 * tokens come from it.
 */
import { parseArgs } from 'node:util';
import { openDevIssuer } from '@vigil/identity/dev-issuer';
import type { VigilConfig } from '../config.ts';

/** "90s", "15m", "1h", "2d" or plain seconds → seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new Error(`--ttl: '${text}' is not a duration like 90s, 15m, 1h or 2d`);
  const n = Number(m[1]);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return n * unit;
}

const list = (v: unknown): string[] =>
  typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : [];

export async function token(config: VigilConfig, argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      sub: { type: 'string' },
      groups: { type: 'string', default: '' },
      roles: { type: 'string', default: '' },
      ttl: { type: 'string', default: '1h' },
      agent: { type: 'boolean', default: false },
    },
  });
  if (!values.sub) {
    process.stderr.write('vigil token: --sub is required (the user name the token is for)\n');
    return 2;
  }
  if (!config.dev_issuer) {
    process.stderr.write('vigil token: this configuration trusts an external issuer (identity:); get tokens from it\n');
    return 2;
  }
  const issuer = await openDevIssuer(config.dev_issuer);
  const jwt = await issuer.mint({
    sub: values.sub,
    groups: list(values.groups),
    roles: list(values.roles),
    ttl_s: parseTtl(values.ttl!),
    actor_kind: values.agent ? 'agent' : 'human',
    audience: config.identity.audience,
  });
  process.stdout.write(`${jwt}\n`);
  return 0;
}
