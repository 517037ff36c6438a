/**
 * The embedded mode's dev issuer: a single ES256 key kept beside the data, a JWKS the verifier and
 * the API serve, and `mint` for `vigil token` / tests. It is an issuer of convenience for a single
 * machine, not an IdP: there is no login, whoever can call `mint` (or read the key file) is trusted.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JSONWebKeySet, type JWK } from 'jose';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { identityError } from './errors.ts';

const ALG = 'ES256';

export interface MintOptions {
  sub: string;
  groups?: string[];
  roles?: string[];
  ttl_s: number;
  actor_kind?: 'agent' | 'human';
  audience: string;
}

export interface DevIssuer {
  readonly issuer: string;
  readonly kid: string;
  /** Path of the public JWKS, for the verifier's `jwks_file`. */
  readonly jwks_file: string;
  /** The public key set (no private members). */
  jwks(): JSONWebKeySet;
  /** An OIDC discovery document subset, enough for clients to find the keys. */
  discovery(): { issuer: string; jwks_uri: string; id_token_signing_alg_values_supported: string[]; subject_types_supported: string[] };
  mint(options: MintOptions): Promise<string>;
}

async function readJson(path: string): Promise<unknown | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Write then rename so a crash never leaves a half-written key file. */
async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(tmp, data, { mode, flag: 'wx' });
  await rename(tmp, path);
}

function publicJwk(priv: JWK): JWK {
  const { kty, crv, x, y, kid, alg } = priv;
  return { kty, crv, x, y, kid, alg, use: 'sig' };
}

async function loadOrCreateKey(dir: string): Promise<JWK> {
  const keyPath = join(dir, 'issuer-key.json');
  const existing = (await readJson(keyPath)) as JWK | undefined;
  if (existing) {
    if (existing.kty !== 'EC' || existing.crv !== 'P-256' || typeof existing.d !== 'string' || typeof existing.kid !== 'string') {
      throw identityError('ID_ERR_DEV_ISSUER', `${keyPath} is not an ES256 private JWK with a kid`);
    }
    // Someone may have copied the file with a looser mode; the private key must stay owner-only.
    await chmod(keyPath, 0o600);
    return existing;
  }
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint(jwk);
  jwk.alg = ALG;
  await writeAtomic(keyPath, JSON.stringify(jwk, null, 2) + '\n', 0o600);
  return jwk;
}

/** Open (creating on first use) the dev issuer whose key lives in `dir`. */
export async function openDevIssuer(options: { dir: string; issuer: string }): Promise<DevIssuer> {
  const dir = resolve(options.dir);
  const issuer = options.issuer.replace(/\/+$/, '');
  let priv: JWK;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    priv = await loadOrCreateKey(dir);
  } catch (err) {
    if ((err as { code?: string }).code === 'ID_ERR_DEV_ISSUER') throw err;
    throw identityError('ID_ERR_DEV_ISSUER', `dev issuer key in ${dir} unavailable: ${(err as Error).message}`, err);
  }
  const kid = priv.kid!;
  const jwks: JSONWebKeySet = { keys: [publicJwk(priv)] };
  const jwksFile = join(dir, 'jwks.json');
  // Always rewrite the public set from the private key, so the two can never disagree.
  const current = await readJson(jwksFile).catch(() => undefined);
  if (JSON.stringify(current) !== JSON.stringify(jwks)) await writeAtomic(jwksFile, JSON.stringify(jwks, null, 2) + '\n', 0o644);
  const signingKey = await importJWK(priv, ALG);

  return {
    issuer,
    kid,
    jwks_file: jwksFile,
    jwks: () => structuredClone(jwks),
    discovery: () => ({
      issuer,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      id_token_signing_alg_values_supported: [ALG],
      subject_types_supported: ['public'],
    }),
    async mint(m: MintOptions): Promise<string> {
      if (!m.sub) throw new TypeError('mint: sub is required');
      if (!Number.isInteger(m.ttl_s) || m.ttl_s <= 0) throw new TypeError('mint: ttl_s must be a positive integer');
      const claims: Record<string, unknown> = { groups: m.groups ?? [], roles: m.roles ?? [] };
      if (m.actor_kind) claims.actor_kind = m.actor_kind;
      return new SignJWT(claims)
        .setProtectedHeader({ alg: ALG, kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setSubject(m.sub)
        .setAudience(m.audience)
        .setIssuedAt()
        .setJti(randomUUID())
        .setExpirationTime(Math.floor(Date.now() / 1000) + m.ttl_s)
        .sign(signingKey);
    },
  };
}
