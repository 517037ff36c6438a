/**
 * Masking strategies, applied to a whole value (a column rule) or to one detected item inside a
 * value (a detector rule):
 *
 * - redact: a fixed placeholder, `[REDACTED]` for a value, `[REDACTED:<detector>]` for an item.
 * - partial: letters and digits become `*` except the last `keep_last` of them; punctuation and
 *   spaces stay, so the shape is visible (`**** **** **** 1111`, `*****@******e.com`). At most
 *   half of a value's letters and digits are ever left visible, so a short value is never shown
 *   whole (`keep_last: 4` on a 4-digit PIN shows 2).
 * - hash: `hmac:` and the first 128 bits (32 hex) of HMAC-SHA256 over the value's bytes, keyed with
 *   the deployment's `masking.hash_key`: equal values give equal tokens (joins, GROUP BY and
 *   distinct counts still work), nobody without the key can test a guess. Without a configured key
 *   `hash` is applied as `redact` (it hides more, never less; the gateway warns at start).
 * - null: SQL NULL for a value. An item inside a larger value cannot be "null", so the whole value
 *   becomes NULL.
 */
import { createHmac } from 'node:crypto';
import type { MaskChoice } from '../policy/mask.ts';
import type { Detector } from '../policy/schema.ts';

export const REDACTED = '[REDACTED]';
export const redactedItem = (d: Detector): string => `[REDACTED:${d}]`;

/** The keyed hash of the deployment; undefined when no key is configured. */
export type Hasher = ((bytes: Uint8Array) => string) | undefined;

export function createHasher(key: string | Uint8Array | undefined): Hasher {
  if (key === undefined || key.length === 0) return undefined;
  const k = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
  return (bytes) => `hmac:${createHmac('sha256', k).update(bytes).digest('hex').slice(0, 32)}`;
}

const ALNUM = /[\p{L}\p{N}]/u;

/** `partial` over a string: see the header. */
export function partial(text: string, keepLast: number): string {
  const chars = [...text];
  let alnum = 0;
  for (const c of chars) if (ALNUM.test(c)) alnum++;
  const visible = Math.min(keepLast, Math.floor(alnum / 2));
  let seen = 0;
  const hideUpTo = alnum - visible;
  let out = '';
  for (const c of chars) {
    if (ALNUM.test(c)) {
      seen++;
      out += seen <= hideUpTo ? '*' : c;
    } else out += c;
  }
  return out;
}

/**
 * A whole value under `choice`; null means SQL NULL. `text` is the value as a string (for partial),
 * `bytes` its bytes on the wire (for hash).
 */
export function maskWhole(text: string, bytes: Uint8Array, choice: MaskChoice, hasher: Hasher): string | null {
  switch (choice.strategy) {
    case 'null':
      return null;
    case 'redact':
      return REDACTED;
    case 'hash':
      return hasher ? hasher(bytes) : REDACTED;
    case 'partial':
      return partial(text, choice.keep_last ?? 4);
  }
}

/** One detected item under `choice`; null means the enclosing value must become NULL. */
export function maskItem(item: string, detector: Detector, choice: MaskChoice, hasher: Hasher): string | null {
  switch (choice.strategy) {
    case 'null':
      return null;
    case 'redact':
      return redactedItem(detector);
    case 'hash':
      return hasher ? hasher(Buffer.from(item, 'utf8')) : redactedItem(detector);
    case 'partial':
      return partial(item, choice.keep_last ?? 4);
  }
}
