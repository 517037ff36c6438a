/**
 * Public keys mapped to identities: the optional alternative to a token for SSH callers.
 *
 * An entry names an OpenSSH public key and the identity it stands for (`sub`, `groups`,
 * `actor_kind`, optional `expires_at`). Entries come from `gateway.ssh.public_keys` (inline, fixed
 * until restart) and `gateway.ssh.public_keys_file` (a YAML list of the same entries).
 *
 * Revocation: a key carries no expiry of its own, unlike a token, so the file is the revocation
 * list. It is checked on every public-key login (one stat) and re-read when it changed: deleting an
 * entry refuses that key from the next login on, without a restart. A file that became unreadable
 * or invalid refuses every key from it (fail closed: a botched edit must not keep a revoked key
 * alive) until it is fixed; the inline entries stay valid. `expires_at` bounds a key in time.
 * Sessions already open are not ended (as with OpenSSH's authorized_keys).
 */
import { stat, readFile } from 'node:fs/promises';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import ssh2 from 'ssh2';
import { gatewayError } from '../../errors.ts';
import { fingerprintOf } from './host-keys.ts';

const { utils } = ssh2;

export const PublicKeyEntrySchema = Type.Object(
  {
    /** OpenSSH public key line: `ssh-ed25519 AAAA… comment` (as in id_ed25519.pub). */
    key: Type.String({ minLength: 16, maxLength: 16_384 }),
    /** The identity the key stands for; must equal the `<sub>` of the SSH user name. */
    sub: Type.String({ minLength: 1, maxLength: 256 }),
    groups: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 256, default: [] }),
    actor_kind: Type.Union([Type.Literal('human'), Type.Literal('agent')], { default: 'human' }),
    /** After this instant (RFC 3339) the key is refused. */
    expires_at: Type.Optional(Type.String({ minLength: 10, maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type PublicKeyEntry = Static<typeof PublicKeyEntrySchema>;

/** What a mapped key says about its holder. */
export interface KeyIdentity {
  sub: string;
  groups: string[];
  actor_kind: 'human' | 'agent';
  /** ms since epoch, or undefined: no expiry. */
  expires_at_ms: number | undefined;
  fingerprint: string;
}

export type KeyLookup = { found: KeyIdentity } | { missing: true } | { unavailable: string };

/** Parse and validate entries; every problem at once (GW_ERR_CONFIG), `where` prefixes the paths. */
export function compileEntries(raw: unknown, where: string): Map<string, KeyIdentity> {
  const errors: string[] = [];
  const out = new Map<string, KeyIdentity>();
  if (!Array.isArray(raw)) throw gatewayError('GW_ERR_CONFIG', `invalid gateway config: ${where}: expected a list of { key, sub, groups?, actor_kind?, expires_at? }`);
  raw.forEach((item, i) => {
    const entry = Value.Default(PublicKeyEntrySchema, Value.Clone(item)) as PublicKeyEntry;
    const errs = [...Value.Errors(PublicKeyEntrySchema, entry)];
    if (errs.length > 0) {
      for (const e of errs) errors.push(`${where}/${i}${e.path}: ${e.message}`);
      return;
    }
    const parsed = utils.parseKey(entry.key);
    if (parsed instanceof Error || Array.isArray(parsed) || parsed.isPrivateKey()) {
      errors.push(`${where}/${i}/key: expected an OpenSSH public key line (ssh-ed25519|ecdsa-sha2-*|ssh-rsa AAAA…)`);
      return;
    }
    const expires = entry.expires_at !== undefined ? Date.parse(entry.expires_at) : undefined;
    if (expires !== undefined && Number.isNaN(expires)) {
      errors.push(`${where}/${i}/expires_at: not a date-time`);
      return;
    }
    const blob = parsed.getPublicSSH();
    const id = blob.toString('base64');
    if (out.has(id)) errors.push(`${where}/${i}/key: the same key is mapped twice (one key, one identity)`);
    out.set(id, { sub: entry.sub, groups: [...entry.groups], actor_kind: entry.actor_kind, expires_at_ms: expires, fingerprint: fingerprintOf(blob) });
  });
  if (errors.length > 0) throw gatewayError('GW_ERR_CONFIG', `invalid gateway config: ${errors.join('; ')}`);
  return out;
}

async function readEntries(file: string): Promise<Map<string, KeyIdentity>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw gatewayError('GW_ERR_CONFIG', `invalid gateway config: /gateway/ssh/public_keys_file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw gatewayError('GW_ERR_CONFIG', `invalid gateway config: /gateway/ssh/public_keys_file: ${file} is not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return compileEntries(doc ?? [], `public_keys_file(${file})`);
}

/** The keys of inline entries and of the file, looked up by public key blob. */
export class PublicKeyDirectory {
  private fileKeys = new Map<string, KeyIdentity>();
  /** Why the file's keys are refused now (unreadable/invalid since the last change), or undefined. */
  private fileProblem: string | undefined;
  private stamp = '';
  private reloading: Promise<void> | undefined;

  private constructor(
    private readonly inline: ReadonlyMap<string, KeyIdentity>,
    private readonly file: string | undefined,
    private readonly onReload: (info: { keys?: number; problem?: string }) => void,
  ) {}

  /** Validate the inline entries and the file now: a bad start fails (GW_ERR_CONFIG). */
  static async load(inline: readonly unknown[], file: string | undefined, onReload: (info: { keys?: number; problem?: string }) => void = () => {}): Promise<PublicKeyDirectory> {
    const dir = new PublicKeyDirectory(compileEntries(inline, '/gateway/ssh/public_keys'), file, onReload);
    if (file) {
      dir.fileKeys = await readEntries(file);
      dir.stamp = await stampOf(file).catch(() => 'missing');
      for (const k of dir.fileKeys.keys()) {
        if (dir.inline.has(k)) throw gatewayError('GW_ERR_CONFIG', `invalid gateway config: a key of ${file} is also in /gateway/ssh/public_keys (one key, one identity)`);
      }
    }
    return dir;
  }

  get size(): number {
    return this.inline.size + this.fileKeys.size;
  }

  async lookup(blob: Buffer): Promise<KeyLookup> {
    const id = blob.toString('base64');
    const inline = this.inline.get(id);
    if (inline) return { found: inline };
    if (!this.file) return { missing: true };
    await this.refresh();
    if (this.fileProblem) return { unavailable: this.fileProblem };
    const hit = this.fileKeys.get(id);
    return hit ? { found: hit } : { missing: true };
  }

  /** Re-read the file when its inode, size or mtime changed (concurrent logins share one read). */
  private async refresh(): Promise<void> {
    const file = this.file!;
    this.reloading ??= (async () => {
      const stamp = await stampOf(file).catch(() => 'missing');
      if (stamp === this.stamp) return;
      this.stamp = stamp;
      try {
        this.fileKeys = await readEntries(file);
        this.fileProblem = undefined;
        this.onReload({ keys: this.fileKeys.size });
      } catch (err) {
        this.fileKeys = new Map();
        this.fileProblem = 'the public key file is unreadable or invalid';
        this.onReload({ problem: (err as Error).message });
      }
    })().finally(() => (this.reloading = undefined));
    await this.reloading;
  }
}

async function stampOf(file: string): Promise<string> {
  const s = await stat(file);
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/** Does `signature` over `blob` verify with the public key `keyData`? (RFC 4252 §7) */
export function verifySignature(keyData: Buffer, blob: Buffer, signature: Buffer, hashAlgo: string | undefined): boolean {
  const key = utils.parseKey(keyData);
  if (key instanceof Error || Array.isArray(key)) return false;
  return key.verify(blob, signature, hashAlgo as never) === true;
}
