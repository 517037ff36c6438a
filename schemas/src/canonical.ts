/**
 * Canonical JSON for hashing: object keys sorted by UTF-16 code unit order, no whitespace,
 * `undefined` members omitted — the RFC 8785 (JCS) rules for the values we use (strings,
 * integers, booleans, null, arrays, objects). Non-finite or non-integer numbers are refused
 * because their serialisation is not stable across implementations.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError(`canonicalJson: non-integer number ${value}`);
      return String(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
      if (value instanceof Uint8Array) throw new TypeError('canonicalJson: binary belongs in the payload');
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: unsupported ${typeof value}`);
  }
}
