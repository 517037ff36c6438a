/**
 * Host keys, both ways:
 * - the gateway's own key toward clients, persisted so it does not change across restarts
 *   (created as ed25519, mode 0600, when the file is missing);
 * - the targets' keys, pinned in config: the upstream handshake accepts only a listed key, and only
 *   the algorithms of the listed key types are offered, so the target presents a pinned one.
 *   There is no trust-on-first-use.
 */
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createHash, timingSafeEqual } from 'node:crypto';
import ssh2 from 'ssh2';
import { gatewayError } from '../../errors.ts';

const { utils } = ssh2;

/** Read the gateway host key, creating it on first start. Returns the PEM/OpenSSH text. */
export async function loadOrCreateHostKey(file: string): Promise<{ key: Buffer; created: boolean; fingerprint: string }> {
  let text: Buffer | undefined;
  try {
    text = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw gatewayError('GW_ERR_SSH_HOST_KEY', `cannot read SSH host key ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  let created = false;
  if (text === undefined) {
    // ssh2 1.17's generator now and then emits an OpenSSH key its own parser rejects ("Malformed
    // OpenSSH private key", ~1 in 100 here): keep only a key that parses back.
    let pair = utils.generateKeyPairSync('ed25519', { comment: 'vigil-gateway' });
    for (let i = 0; i < 50 && utils.parseKey(pair.private) instanceof Error; i++) pair = utils.generateKeyPairSync('ed25519', { comment: 'vigil-gateway' });
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, pair.private, { mode: 0o600, flag: 'wx' });
    await rename(tmp, file);
    text = Buffer.from(pair.private);
    created = true;
  }
  const parsed = utils.parseKey(text);
  if (parsed instanceof Error || Array.isArray(parsed)) {
    throw gatewayError('GW_ERR_SSH_HOST_KEY', `SSH host key ${file} is not a private key ssh2 can use`);
  }
  if (!parsed.isPrivateKey()) throw gatewayError('GW_ERR_SSH_HOST_KEY', `SSH host key ${file} holds no private key`);
  return { key: text, created, fingerprint: fingerprintOf(parsed.getPublicSSH()) };
}

/** OpenSSH's SHA256:base64 fingerprint of a public key blob. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export interface PinnedKey {
  type: string;
  blob: Buffer;
  fingerprint: string;
}

/** Parse `type base64 [comment]` lines (known_hosts style without host names); throws GW_ERR_CONFIG. */
export function parsePinnedKeys(lines: readonly string[], what: string): PinnedKey[] {
  return lines.map((line, i) => {
    const [type, b64] = line.trim().split(/\s+/);
    const blob = b64 ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
    // The blob starts with its own type string: a cheap, exact consistency check.
    const inner = blob.length > 4 ? blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1') : '';
    if (!type || !b64 || inner !== type || !(type in HOST_KEY_ALGORITHMS)) {
      throw gatewayError('GW_ERR_CONFIG', `invalid gateway config: ${what}/host_keys/${i}: expected an OpenSSH public key line (ssh-ed25519|ecdsa-sha2-nistp256|384|521|ssh-rsa AAAA…)`);
    }
    return { type, blob, fingerprint: fingerprintOf(blob) };
  });
}

/** Host key algorithms to offer for each pinned key type (RFC 8332 for RSA's SHA-2 signatures). */
const HOST_KEY_ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

export function hostKeyAlgorithms(pinned: readonly PinnedKey[]): string[] {
  return [...new Set(pinned.flatMap((k) => HOST_KEY_ALGORITHMS[k.type] ?? []))];
}

/** True when `blob` is one of the pinned keys. */
export function isPinned(pinned: readonly PinnedKey[], blob: Buffer): boolean {
  return pinned.some((k) => k.blob.length === blob.length && timingSafeEqual(k.blob, blob));
}
