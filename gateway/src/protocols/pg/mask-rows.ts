/**
 * Value-level rewriting of PostgreSQL result messages, pure: RowDescription (retyping masked
 * columns), DataRow (new values, correct lengths), COPY TO STDOUT rows (text, csv and binary
 * formats), FunctionCallResponse and ErrorResponse/NoticeResponse fields. mask-stream.ts decides
 * WHAT to mask per column; this file only rewrites bytes.
 *
 * Types: a column masked with redact/partial/hash now carries text, so its RowDescription entry
 * says `text` (OID 25, typlen -1, typmod -1) — clients then decode it as text in either format,
 * since text's binary form is its UTF-8 bytes. `null` keeps the type (NULL fits every type).
 * A detector hit inside a numeric value (int8 4111111111111111) becomes NULL: no masked text is a
 * valid number. Binary values are scanned by detectors only for text-like types (text, varchar,
 * char, name, json, jsonb, xml, unknown) and int8; other binary encodings are not read.
 */
import type { MaskChoice } from '../../policy/mask.ts';
import type { Detector } from '../../policy/schema.ts';
import type { MaskPlan } from '../../mask/engine.ts';

export const TEXT_OID = 25;
const TEXT_LIKE = new Set([25, 1043, 1042, 19, 114, 3802, 142, 705, 18]);
const JSONB_OID = 3802;
const INT8_OID = 20;
const NUMERIC_LIKE = new Set([20, 21, 23, 26, 700, 701, 1700, 790]);

export interface Field {
  name: string;
  tableOid: number;
  attnum: number;
  typeOid: number;
  format: number;
}

/** Per result column: the whole-value mask (if any). */
export interface ColumnPlan {
  readonly fields: readonly Field[];
  readonly choices: readonly (MaskChoice | undefined)[];
  /** Why each masked column is masked (for mask.applied): the source column, or 'undecidable'. */
  readonly reasons: readonly (string | undefined)[];
  readonly mask: MaskPlan;
  /** Decode/encode text values (client_encoding UTF8 → utf8, else byte-preserving latin1). */
  readonly encoding: BufferEncoding;
  /** Counts for mask.applied. */
  readonly counts: number[];
  readonly hits: Map<Detector, number>;
  rows: number;
}

export function parseRowDescription(m: Buffer): Field[] {
  const n = m.readInt16BE(5);
  const out: Field[] = [];
  let off = 7;
  for (let i = 0; i < n; i++) {
    const end = m.indexOf(0, off);
    const name = m.toString('utf8', off, end);
    off = end + 1;
    out.push({ name, tableOid: m.readUInt32BE(off), attnum: m.readInt16BE(off + 4), typeOid: m.readUInt32BE(off + 6), format: m.readInt16BE(off + 16) });
    off += 18;
  }
  return out;
}

/** The RowDescription with masked (non-null strategy) columns retyped as text. */
export function rewriteRowDescription(m: Buffer, choices: readonly (MaskChoice | undefined)[]): Buffer {
  if (!choices.some((c) => c !== undefined && c.strategy !== 'null')) return m;
  const out = Buffer.from(m);
  const n = out.readInt16BE(5);
  let off = 7;
  for (let i = 0; i < n; i++) {
    off = out.indexOf(0, off) + 1;
    const c = choices[i];
    if (c !== undefined && c.strategy !== 'null') {
      out.writeUInt32BE(TEXT_OID, off + 6);
      out.writeInt16BE(-1, off + 10);
      out.writeInt32BE(-1, off + 12);
    }
    off += 18;
  }
  return out;
}

/** One value through the plan: undefined = unchanged, null = SQL NULL, Buffer = new bytes. */
function maskValue(plan: ColumnPlan, i: number, v: Buffer, format: number, typeOid: number): Buffer | null | undefined {
  const choice = plan.choices[i];
  if (choice !== undefined) {
    plan.counts[i] = (plan.counts[i] ?? 0) + 1;
    const binaryOpaque = format === 1 && !TEXT_LIKE.has(typeOid);
    // partial of a binary encoding would show raw bytes: redact instead.
    const c = binaryOpaque && choice.strategy === 'partial' ? { ...choice, strategy: 'redact' as const } : choice;
    const text = binaryOpaque ? '' : valueText(v, format, typeOid, plan.encoding);
    const masked = plan.mask.maskWhole(text, v, c);
    return masked === null ? null : Buffer.from(masked, plan.encoding);
  }
  if (!plan.mask.hasDetectors) return undefined;
  let text: string;
  if (format === 0 || TEXT_LIKE.has(typeOid)) text = valueText(v, format, typeOid, plan.encoding);
  else if (typeOid === INT8_OID && v.length === 8) text = v.readBigInt64BE(0).toString();
  else return undefined;
  const r = plan.mask.scan(text);
  if (r === undefined) return undefined;
  for (const [d, n] of r.hits) plan.hits.set(d, (plan.hits.get(d) ?? 0) + n);
  if (r.text === null || NUMERIC_LIKE.has(typeOid) || format === 1) {
    // Binary text-like values could be re-encoded, but jsonb/xml have framing; NULL is always valid.
    if (r.text !== null && format === 1 && typeOid !== JSONB_OID && TEXT_LIKE.has(typeOid)) return Buffer.from(r.text, plan.encoding);
    return null;
  }
  return Buffer.from(r.text, plan.encoding);
}

function valueText(v: Buffer, format: number, typeOid: number, enc: BufferEncoding): string {
  if (format === 1 && typeOid === JSONB_OID) return v.toString(enc, 1);
  return v.toString(enc);
}

/** DataRow through the plan; the same buffer when nothing changed. */
export function rewriteDataRow(m: Buffer, plan: ColumnPlan): Buffer {
  plan.rows++;
  const n = m.readInt16BE(5);
  let off = 7;
  let parts: (Buffer | null)[] | undefined;
  const starts: number[] = [];
  for (let i = 0; i < n; i++) {
    const len = m.readInt32BE(off);
    starts.push(off);
    const v = len < 0 ? undefined : m.subarray(off + 4, off + 4 + len);
    off += 4 + Math.max(0, len);
    if (v === undefined) continue;
    const f = plan.fields[i];
    const out = maskValue(plan, i, v, f?.format ?? 0, f?.typeOid ?? 0);
    if (out === undefined) continue;
    parts ??= [];
    parts[i] = out;
  }
  if (parts === undefined) return m;
  const chunks: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    if (i in parts) {
      const v = parts[i]!;
      const len = Buffer.alloc(4);
      len.writeInt32BE(v === null ? -1 : v.length);
      chunks.push(len);
      if (v !== null) chunks.push(v);
    } else {
      const s = starts[i]!;
      const len = m.readInt32BE(s);
      chunks.push(m.subarray(s, s + 4 + Math.max(0, len)));
    }
  }
  return typed(0x44, Buffer.concat([m.subarray(5, 7), ...chunks]));
}

function typed(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

// ---- COPY TO STDOUT ---------------------------------------------------------------------------

export interface CopyFormat {
  kind: 'text' | 'csv' | 'binary';
  delimiter: string;
  null: string;
  quote: string;
  escape: string;
  header: boolean;
}

/** Options of a CopyStmt parse tree (defaults of COPY). */
export function copyFormat(options: unknown[]): CopyFormat {
  const get = (name: string): string | undefined => {
    for (const o of options) {
      const d = (o as { DefElem?: { defname?: string; arg?: Record<string, { sval?: string; boolval?: boolean }> } }).DefElem;
      if (d?.defname !== name) continue;
      const arg = d.arg ? Object.values(d.arg)[0] : undefined;
      if (arg === undefined) return 'true';
      return arg.sval ?? String(arg.boolval ?? (arg as { ival?: number }).ival ?? 'true');
    }
    return undefined;
  };
  const fmt = (get('format') ?? 'text').toLowerCase();
  const kind = fmt === 'csv' ? 'csv' : fmt === 'binary' ? 'binary' : 'text';
  const quote = get('quote') ?? '"';
  const header = get('header');
  return {
    kind,
    delimiter: get('delimiter') ?? (kind === 'csv' ? ',' : '\t'),
    null: get('null') ?? (kind === 'csv' ? '' : '\\N'),
    quote,
    escape: get('escape') ?? quote,
    header: header !== undefined && header !== 'false' && header !== '0' && header !== 'off',
  };
}

export interface CopyState {
  readonly format: CopyFormat;
  /** The header line (csv/text HEADER) or the binary file header is still to come. */
  pendingHeader: boolean;
}

const BINARY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** One CopyData message's payload (PostgreSQL sends one row per message for COPY TO). */
export function rewriteCopyData(payload: Buffer, plan: ColumnPlan, state: CopyState): Buffer {
  const f = state.format;
  if (f.kind === 'binary') return rewriteBinaryCopy(payload, plan, state);
  if (state.pendingHeader && f.header) {
    state.pendingHeader = false;
    return payload;
  }
  const line = payload.toString(plan.encoding);
  const eol = line.endsWith('\r\n') ? '\r\n' : line.endsWith('\n') ? '\n' : '';
  const body = line.slice(0, line.length - eol.length);
  const fields = f.kind === 'csv' ? splitCsv(body, f) : splitText(body, f);
  plan.rows++;
  let changed = false;
  const out = fields.map((raw, i) => {
    if (raw === null) return null;
    const v = Buffer.from(raw, plan.encoding);
    const m = maskValue(plan, i, v, 0, plan.fields[i]?.typeOid ?? 0);
    if (m === undefined) return raw;
    changed = true;
    return m === null ? null : m.toString(plan.encoding);
  });
  if (!changed) return payload;
  const joined = out.map((v) => (v === null ? f.null : f.kind === 'csv' ? csvQuote(v, f) : textEscape(v, f))).join(f.delimiter);
  return Buffer.from(joined + eol, plan.encoding);
}

function splitText(line: string, f: CopyFormat): (string | null)[] {
  return line.split(f.delimiter).map((raw) => (raw === f.null ? null : textUnescape(raw)));
}

function textUnescape(s: string): string {
  if (!s.includes('\\')) return s;
  return s.replace(/\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))/g, (_m, oct: string, hex: string, ch: string) => {
    if (oct) return String.fromCharCode(parseInt(oct, 8));
    if (hex) return String.fromCharCode(parseInt(hex, 16));
    return ({ b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' } as Record<string, string>)[ch] ?? ch;
  });
}

function textEscape(s: string, f: CopyFormat): string {
  let out = s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
  if (f.delimiter !== '\t') out = out.split(f.delimiter).join(`\\${f.delimiter}`);
  return out;
}

function splitCsv(line: string, f: CopyFormat): (string | null)[] {
  const out: (string | null)[] = [];
  let i = 0;
  for (;;) {
    if (line.startsWith(f.quote, i)) {
      let v = '';
      i += 1;
      for (;;) {
        if (i >= line.length) break;
        // An escape before a quote is a literal quote (with the default escape, "" inside quotes).
        if (line.startsWith(f.escape, i) && line.startsWith(f.quote, i + f.escape.length)) {
          v += f.quote;
          i += f.escape.length + f.quote.length;
          continue;
        }
        if (line.startsWith(f.quote, i)) {
          i += f.quote.length;
          break;
        }
        v += line[i];
        i++;
      }
      out.push(v); // a quoted empty string is "", not NULL
    } else {
      const end = line.indexOf(f.delimiter, i);
      const raw = end < 0 ? line.slice(i) : line.slice(i, end);
      out.push(raw === f.null ? null : raw);
      i = end < 0 ? line.length : end;
    }
    if (i >= line.length || !line.startsWith(f.delimiter, i)) break;
    i += f.delimiter.length;
  }
  return out;
}

function csvQuote(v: string, f: CopyFormat): string {
  return f.quote + v.split(f.quote).join(f.escape + f.quote) + f.quote;
}

/** Binary COPY: masked columns become NULL (the client decodes the table's own types, so text would corrupt it). */
function rewriteBinaryCopy(payload: Buffer, plan: ColumnPlan, state: CopyState): Buffer {
  let off = 0;
  let head: Buffer | undefined;
  if (state.pendingHeader) {
    state.pendingHeader = false;
    if (payload.length < 19 || !payload.subarray(0, 11).equals(BINARY_SIGNATURE)) return payload;
    off = 19 + payload.readUInt32BE(15);
    head = payload.subarray(0, off);
  }
  if (payload.length - off < 2) return payload;
  const n = payload.readInt16BE(off);
  if (n < 0) return payload; // trailer
  plan.rows++;
  const parts: Buffer[] = [];
  if (head) parts.push(head);
  parts.push(payload.subarray(off, off + 2));
  off += 2;
  let changed = false;
  for (let i = 0; i < n; i++) {
    const len = payload.readInt32BE(off);
    const whole = payload.subarray(off, off + 4 + Math.max(0, len));
    off += 4 + Math.max(0, len);
    if (len >= 0 && plan.choices[i] !== undefined) {
      plan.counts[i] = (plan.counts[i] ?? 0) + 1;
      const nul = Buffer.alloc(4);
      nul.writeInt32BE(-1);
      parts.push(nul);
      changed = true;
    } else parts.push(whole);
  }
  if (off < payload.length) parts.push(payload.subarray(off));
  return changed ? Buffer.concat(parts) : payload;
}

// ---- errors and notices -------------------------------------------------------------------------

/** ErrorResponse/NoticeResponse fields in order. */
export function parseFields(m: Buffer): [string, string][] {
  const out: [string, string][] = [];
  let off = 5;
  while (off < m.length && m[off] !== 0) {
    const end = m.indexOf(0, off + 1);
    if (end < 0) break;
    out.push([String.fromCharCode(m[off]!), m.toString('utf8', off + 1, end)]);
    off = end + 1;
  }
  return out;
}

export function buildFields(type: number, fields: [string, string][]): Buffer {
  return typed(type, Buffer.concat([...fields.map(([k, v]) => Buffer.from(`${k}${v}\0`, 'utf8')), Buffer.from([0])]));
}

/** Free-text fields of an error or notice that may echo values. */
const VALUE_FIELDS = new Set(['M', 'D', 'H', 'W', 'q']);

/**
 * An error or notice of a statement that reads masked data: PostgreSQL quotes offending values
 * (`invalid input syntax for type integer: "123-45-6789"`, `Key (ssn)=(…) already exists.`), so
 * quoted and parenthesised values in the message are redacted and the detail, context and
 * internal query are withheld. Detectors run on every text field either way.
 */
export function scrubError(m: Buffer, mask: MaskPlan, tainted: boolean, hits: Map<Detector, number>): Buffer {
  const fields = parseFields(m);
  let changed = false;
  const out: [string, string][] = [];
  for (const [k, v0] of fields) {
    let v = v0;
    if (tainted && VALUE_FIELDS.has(k)) {
      if (k === 'W' || k === 'q') {
        changed = true;
        continue;
      }
      if (k === 'D') v = 'detail withheld by the gateway: the statement reads masked columns';
      else v = v.replace(/"(?:[^"]|"")*"/g, '"[REDACTED]"').replace(/=\((.*)\)/g, '=([REDACTED])');
    }
    if (VALUE_FIELDS.has(k)) {
      const r = mask.scan(v);
      if (r !== undefined) {
        for (const [d, n] of r.hits) hits.set(d, (hits.get(d) ?? 0) + n);
        v = r.text ?? '[REDACTED]';
      }
    }
    if (v !== v0) changed = true;
    out.push([k, v]);
  }
  return changed ? buildFields(m[0]!, out) : m;
}

/** FunctionCallResponse ('V'): int32 length + value. */
export function rewriteFunctionResult(m: Buffer, choice: MaskChoice, plan: MaskPlan): Buffer {
  const len = m.readInt32BE(5);
  if (len < 0) return m;
  const v = m.subarray(9, 9 + len);
  const masked = plan.maskWhole('', v, choice.strategy === 'partial' ? { ...choice, strategy: 'redact' } : choice);
  const body = Buffer.alloc(4);
  if (masked === null) {
    body.writeInt32BE(-1);
    return typed(0x56, body);
  }
  const bytes = Buffer.from(masked, 'utf8');
  body.writeInt32BE(bytes.length);
  return typed(0x56, Buffer.concat([body, bytes]));
}
