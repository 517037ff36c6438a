/**
 * The embedded mode's one local account for the UI: `admin`, with a random password created on
 * first start and handed back once (the CLI prints it), kept only as a scrypt hash beside the dev
 * issuer's key. To reset it, delete the file and restart: a new password is created and printed.
 *
 * Deliberately not a user database: real deployments log in at their own OIDC provider.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const ADMIN_USER = 'admin';
export const ADMIN_ROLES: readonly string[] = ['admin'];
/** Groups of the local admin's token: a policy names `vigil-admins` among `approver_groups` to let the local admin approve (docs/approvals.md). */
export const ADMIN_GROUPS: readonly string[] = ['vigil-admins'];
export const ADMIN_FILE = 'ui-admin.scrypt.json';

/** scrypt cost: N=2^15, r=8 (32 MiB, ~50-100 ms): slow enough to make guessing expensive, fast for one login. */
const PARAMS = { N: 1 << 15, r: 8, p: 1, keylen: 32 } as const;

function scrypt(password: string, salt: Buffer, p: { N: number; r: number; p: number; keylen: number }): Promise<Buffer> {
  const opts: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: 128 * p.N * p.r * 2 };
  return new Promise((res, rej) => scryptCb(password, salt, p.keylen, opts, (err, key) => (err ? rej(err) : res(key))));
}

interface StoredHash {
  alg: 'scrypt';
  user: string;
  N: number;
  r: number;
  p: number;
  salt: string;
  hash: string;
}

export interface LocalAdmin {
  readonly user: string;
  readonly roles: readonly string[];
  /** The password, only when this call created it (first start): print it once, keep it nowhere. */
  readonly createdPassword?: string;
  /** Constant-time check of a user name and password. */
  verify(user: string, password: string): Promise<boolean>;
}

export async function openLocalAdmin(options: { dir: string }): Promise<LocalAdmin> {
  const dir = resolve(options.dir);
  const path = join(dir, ADMIN_FILE);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let stored: StoredHash | undefined;
  let createdPassword: string | undefined;
  try {
    stored = JSON.parse(await readFile(path, 'utf8')) as StoredHash;
    if (stored.alg !== 'scrypt' || typeof stored.salt !== 'string' || typeof stored.hash !== 'string' || !Number.isInteger(stored.N)) {
      throw new Error(`${path} is not a Vigil scrypt password file; delete it to create a new admin password`);
    }
    await chmod(path, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // 18 random bytes → 24 base64url characters (~144 bits): no dictionary, no reuse.
    createdPassword = randomBytes(18).toString('base64url');
    const salt = randomBytes(16);
    const hash = await scrypt(createdPassword, salt, PARAMS);
    stored = { alg: 'scrypt', user: ADMIN_USER, N: PARAMS.N, r: PARAMS.r, p: PARAMS.p, salt: salt.toString('base64'), hash: hash.toString('base64') };
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(stored, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, path);
  }
  const s = stored;
  const expected = Buffer.from(s.hash, 'base64');
  return {
    user: s.user,
    roles: ADMIN_ROLES,
    ...(createdPassword ? { createdPassword } : {}),
    async verify(user: string, password: string): Promise<boolean> {
      // Always pay for the hash, so a wrong user name answers as slowly as a wrong password.
      const got = await scrypt(password.slice(0, 1024), Buffer.from(s.salt, 'base64'), { N: s.N, r: s.r, p: s.p, keylen: expected.length });
      return timingSafeEqual(got, expected) && user === s.user;
    },
  };
}
