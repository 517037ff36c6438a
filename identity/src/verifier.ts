/**
 * Token verification on jose: signature against the issuer's JWKS (remote, cached; or a local file,
 * re-read when it changes), issuer, audience, exp/nbf with tolerance, and an algorithm allow-list
 * that is checked before any key is looked up (so `alg: none` and HS256-with-the-public-key never
 * reach a verify call). Every failure becomes an IdentityError with a stable code; messages never
 * contain the token.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { stat, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseIdentityConfig, type IdentityConfig, type IdentityConfigInput } from './config.ts';
import { identityError } from './errors.ts';
import { IdentityError, type TokenVerifier, type VerifiedIdentity } from './types.ts';

/** Marks failures of getting keys (fetch, timeout, file read) apart from "no key matches". */
class JwksUnavailable extends Error {}

/** jose errors raised by looking a key up in a key set, which are verdicts on the token, not I/O. */
function isKeyLookupVerdict(err: unknown): boolean {
  return (
    err instanceof joseErrors.JWKSNoMatchingKey ||
    err instanceof joseErrors.JWKSMultipleMatchingKeys ||
    err instanceof joseErrors.JOSENotSupported ||
    err instanceof joseErrors.JOSEAlgNotAllowed
  );
}

function remoteKeys(config: IdentityConfig): JWTVerifyGetKey {
  const jwks = createRemoteJWKSet(new URL(config.jwks_url!), {
    cacheMaxAge: config.jwks_cache_ms,
    // An unknown kid forces a refetch (key rotation) at most once per cooldown, so a flood of
    // forged kids cannot turn into a flood of requests to the issuer.
    cooldownDuration: Math.min(30_000, config.jwks_cache_ms),
  });
  return async (header, token) => {
    try {
      return await jwks(header, token);
    } catch (err) {
      if (isKeyLookupVerdict(err)) throw err;
      throw new JwksUnavailable(`JWKS ${config.jwks_url} unavailable: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  };
}

/**
 * A local JWKS file, re-read when its (inode, size, mtime in ns) changes. A stat per verification
 * is a few µs beside a signature check and needs no watcher (fs.watch misses atomic renames on some
 * platforms). If the file becomes unreadable we fail closed rather than keep possibly revoked keys.
 */
function fileKeys(config: IdentityConfig): JWTVerifyGetKey {
  const path = resolve(config.jwks_file!);
  let stamp = '';
  let keys: ReturnType<typeof createLocalJWKSet> | undefined;
  const load = async (): Promise<ReturnType<typeof createLocalJWKSet>> => {
    try {
      const s = await stat(path, { bigint: true });
      const next = `${s.ino}:${s.size}:${s.mtimeNs}`;
      if (!keys || next !== stamp) {
        const jwks = JSON.parse(await readFile(path, 'utf8')) as JSONWebKeySet;
        keys = createLocalJWKSet(jwks);
        stamp = next;
      }
      return keys;
    } catch (err) {
      keys = undefined;
      stamp = '';
      throw new JwksUnavailable(`JWKS file ${path} unreadable: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  };
  return async (header, token) => (await load())(header, token);
}

/** Map any failure of jwtVerify to a stable code. */
function mapError(err: unknown, config: IdentityConfig): IdentityError {
  if (err instanceof IdentityError) return err;
  if (err instanceof JwksUnavailable) return identityError('ID_ERR_JWKS_UNAVAILABLE', err.message, err.cause);
  if (err instanceof joseErrors.JWTExpired) return identityError('ID_ERR_TOKEN_EXPIRED', 'token expired', err);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf':
      case 'iat':
        return identityError('ID_ERR_TOKEN_NOT_YET_VALID', `token not valid yet ("${err.claim}" is in the future)`, err);
      case 'iss':
        return identityError('ID_ERR_WRONG_ISSUER', `token issuer is not ${config.issuer}`, err);
      case 'aud':
        return identityError('ID_ERR_WRONG_AUDIENCE', `token audience does not include ${config.audience}`, err);
      default:
        return identityError('ID_ERR_MALFORMED', `token claim "${err.claim}" is ${err.reason === 'missing' ? 'missing' : 'invalid'}`, err);
    }
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) {
    return identityError('ID_ERR_ALG_NOT_ALLOWED', `token algorithm not allowed (allowed: ${config.algorithms.join(', ')})`, err);
  }
  if (
    err instanceof joseErrors.JWSSignatureVerificationFailed ||
    err instanceof joseErrors.JWKSNoMatchingKey ||
    err instanceof joseErrors.JWKSMultipleMatchingKeys
  ) {
    const why = err instanceof joseErrors.JWSSignatureVerificationFailed ? 'signature does not verify' : 'no unique issuer key matches the token header';
    return identityError('ID_ERR_BAD_SIGNATURE', `token ${why}`, err);
  }
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JOSEError) {
    return identityError('ID_ERR_MALFORMED', `token malformed: ${err.message}`, err);
  }
  // jose throws TypeError for e.g. a non-string claim; anything else unexpected is still a refusal.
  return identityError('ID_ERR_MALFORMED', 'token could not be verified', err);
}

function stringArray(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  // Some IdPs emit a single role as a string, or space-separated like OAuth scope.
  if (typeof value === 'string') return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

/** Pure mapping of verified claims to the identity the rest of Vigil sees. */
export function identityFromClaims(payload: JWTPayload, config: Pick<IdentityConfig, 'roles_claim' | 'groups_claim' | 'issuer'>): VerifiedIdentity {
  if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
    throw identityError('ID_ERR_NO_SUB', 'token has no "sub" claim');
  }
  const kind = payload.actor_kind;
  const actor_kind: 'agent' | 'human' =
    kind === 'agent' || kind === 'human' ? kind : payload.act !== undefined && payload.act !== null ? 'agent' : 'human';
  return {
    sub: payload.sub,
    issuer: typeof payload.iss === 'string' ? payload.iss : config.issuer,
    groups: stringArray(payload[config.groups_claim]),
    roles: stringArray(payload[config.roles_claim]),
    actor_kind,
    ...(typeof payload.exp === 'number' ? { exp: payload.exp } : {}),
  };
}

/** Build a verifier from raw (unvalidated) or parsed config. Throws ID_ERR_CONFIG on bad config. */
export function createVerifier(input: IdentityConfig | IdentityConfigInput | unknown): TokenVerifier {
  const config = parseIdentityConfig(input);
  const getKey = config.jwks_url !== undefined ? remoteKeys(config) : fileKeys(config);
  const options = {
    issuer: config.issuer,
    audience: config.audience,
    algorithms: [...config.algorithms],
    clockTolerance: config.clock_tolerance_s,
    // A token without an expiry would be a bearer credential forever.
    requiredClaims: ['exp'],
  };
  return {
    async verify(token: string): Promise<VerifiedIdentity> {
      if (typeof token !== 'string' || token.length === 0) throw identityError('ID_ERR_MALFORMED', 'no token');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, getKey, options));
      } catch (err) {
        throw mapError(err, config);
      }
      return identityFromClaims(payload, config);
    },
  };
}
