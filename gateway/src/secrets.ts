/**
 * Secret references (target passwords) and their resolution. A resolved value lives only inside a
 * `Secret`, whose string/JSON/inspect forms are redacted, so an accidental log line or error
 * interpolation prints `[secret]`. Errors name the reference ("env VIGIL_PG_PASSWORD is not set"),
 * never a value.
 */
import { readFile } from 'node:fs/promises';
import { inspect } from 'node:util';
import { Type, type Static } from '@sinclair/typebox';
import { gatewayError } from './errors.ts';

export const SecretRef = Type.Union([
  Type.Object({ env: Type.String({ minLength: 1, pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }) }, { additionalProperties: false }),
  Type.Object({ file: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  /** Development only: the value sits in the config file in clear. Never use in production. */
  Type.Object({ value: Type.String() }, { additionalProperties: false }),
]);
export type SecretRef = Static<typeof SecretRef>;

const REDACTED = '[secret]';

export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  /** The clear value. Call only where it is put on the wire to the target. */
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return REDACTED;
  }
}

/** A description of the ref safe for errors and logs. */
export function describeRef(ref: SecretRef): string {
  if ('env' in ref) return `env ${ref.env}`;
  if ('file' in ref) return `file ${ref.file}`;
  return 'inline value';
}

/**
 * Resolve a ref. Read each time it is needed (not cached) so a rotated file secret (e.g. a mounted
 * Kubernetes secret) is picked up by the next connection. A trailing newline of a file is dropped
 * (editors and `echo` add one); an empty result is an error, not an empty password.
 */
export async function resolveSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): Promise<Secret> {
  let value: string | undefined;
  if ('env' in ref) {
    value = env[ref.env];
    if (value === undefined) throw gatewayError('GW_ERR_SECRET_UNRESOLVED', `${describeRef(ref)} is not set`);
  } else if ('file' in ref) {
    try {
      value = (await readFile(ref.file, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      // Only the errno code: fs messages are safe, but keep the shape uniform and minimal.
      throw gatewayError('GW_ERR_SECRET_UNRESOLVED', `${describeRef(ref)} could not be read (${code})`);
    }
  } else {
    value = ref.value;
  }
  if (value.length === 0) throw gatewayError('GW_ERR_SECRET_UNRESOLVED', `${describeRef(ref)} is empty`);
  return new Secret(value);
}
