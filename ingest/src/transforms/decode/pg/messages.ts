/**
 * PostgreSQL v3 message bodies the decoder reads (protocol "Message Formats" chapter). Pure:
 * bytes in, plain values out. Every reader bounds-checks and throws `PgMessageError` on a
 * truncated or malformed body — the decoder turns that into a per-session decode error.
 *
 * Frame events carry the whole message (`data` = type byte, Int32 length, body); `bodyOf` also
 * accepts a message without its type byte, so a gateway that records either shape decodes.
 */

/** Frontend (client → server) message types the decoder acts on. */
export const Frontend = {
  Query: 'Q', // Q: simple query, one string (possibly several statements)
  Parse: 'P', // P: name, text, parameter type OIDs
  Bind: 'B', // B: portal, statement, parameter formats and values, result formats
  Describe: 'D', // D: 'S' statement | 'P' portal, name
  Execute: 'E', // E: portal, max rows
  Close: 'C', // C: 'S' | 'P', name
  Sync: 'S', // S: end of an extended-protocol pipeline
  Flush: 'H', // H: ask the server to flush its output
  CopyData: 'd', // d: COPY FROM STDIN data
  CopyDone: 'c', // c: COPY FROM STDIN finished
  CopyFail: 'f', // f: client aborts COPY FROM STDIN
  Terminate: 'X', // X: client closes the session
} as const;

/** Backend (server → client) message types the decoder acts on. */
export const Backend = {
  ParseComplete: '1', // 1
  BindComplete: '2', // 2
  CloseComplete: '3', // 3
  ParameterDescription: 't', // t: reply to Describe(statement), before T/n
  RowDescription: 'T', // T
  NoData: 'n', // n
  DataRow: 'D', // D
  CommandComplete: 'C', // C: command tag
  EmptyQueryResponse: 'I', // I
  ErrorResponse: 'E', // E: fields; 'C' = SQLSTATE, 'M' = message
  PortalSuspended: 's', // s: Execute hit its row limit
  ReadyForQuery: 'Z', // Z: transaction status
  CopyInResponse: 'G', // G
  CopyOutResponse: 'H', // H
  CopyBothResponse: 'W', // W (replication)
  CopyData: 'd', // d: COPY TO STDOUT data
  CopyDone: 'c', // c
  NotificationResponse: 'A', // A: LISTEN/NOTIFY, not a query
  NoticeResponse: 'N', // N
  ParameterStatus: 'S', // S
} as const;

export class PgMessageError extends Error {}

/** The body of a whole message (after type byte and length), or of a type-less one (after length). */
export function bodyOf(type: string, data: Uint8Array): Uint8Array {
  if (data.length >= 5 && data[0] === type.charCodeAt(0) && readInt32(data, 1) === data.length - 1) return data.subarray(5);
  if (data.length >= 4 && readInt32(data, 0) === data.length) return data.subarray(4);
  throw new PgMessageError(`${type}: length field does not match the frame`);
}

function readInt32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Sequential reader over one message body. */
export class Reader {
  private at = 0;
  constructor(private readonly b: Uint8Array) {}

  private need(n: number, what: string): void {
    if (this.at + n > this.b.length) throw new PgMessageError(`truncated message reading ${what}`);
  }

  cstring(what = 'string'): string {
    const end = this.b.indexOf(0, this.at);
    if (end < 0) throw new PgMessageError(`unterminated ${what}`);
    const s = utf8.decode(this.b.subarray(this.at, end));
    this.at = end + 1;
    return s;
  }

  byte(what = 'byte'): number {
    this.need(1, what);
    return this.b[this.at++]!;
  }

  int16(what = 'int16'): number {
    this.need(2, what);
    const v = (this.b[this.at]! << 8) | this.b[this.at + 1]!;
    this.at += 2;
    return v & 0x8000 ? v - 0x10000 : v;
  }

  int32(what = 'int32'): number {
    this.need(4, what);
    const v = readInt32(this.b, this.at) | 0;
    this.at += 4;
    return v;
  }

  bytes(n: number, what = 'bytes'): Uint8Array {
    this.need(n, what);
    const v = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
}

export function parseQuery(body: Uint8Array): string {
  return new Reader(body).cstring('query text');
}

export interface Parse {
  name: string;
  text: string;
}
export function parseParse(body: Uint8Array): Parse {
  const r = new Reader(body);
  return { name: r.cstring('statement name'), text: r.cstring('statement text') };
}

export interface Bind {
  portal: string;
  statement: string;
  /** Parameter values as text; binary-format ones as `\x` hex; SQL NULL as null. */
  params: (string | null)[];
}
export function parseBind(body: Uint8Array): Bind {
  const r = new Reader(body);
  const portal = r.cstring('portal name');
  const statement = r.cstring('statement name');
  const nFormats = r.int16('format count');
  const formats: number[] = [];
  for (let i = 0; i < nFormats; i++) formats.push(r.int16('format code'));
  const nParams = r.int16('parameter count');
  if (nParams < 0 || (nFormats > 1 && nFormats !== nParams)) throw new PgMessageError('Bind: format/parameter count mismatch');
  const params: (string | null)[] = [];
  for (let i = 0; i < nParams; i++) {
    const len = r.int32('parameter length');
    if (len === -1) {
      params.push(null);
      continue;
    }
    if (len < 0) throw new PgMessageError('Bind: negative parameter length');
    const value = r.bytes(len, 'parameter value');
    // One format code applies to all parameters; none means all text (protocol spec).
    const binary = (nFormats === 1 ? formats[0] : nFormats === 0 ? 0 : formats[i]) === 1;
    params.push(binary ? '\\x' + Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex') : utf8.decode(value));
  }
  return { portal, statement, params };
}

export function parseExecute(body: Uint8Array): { portal: string; maxRows: number } {
  const r = new Reader(body);
  return { portal: r.cstring('portal name'), maxRows: r.int32('max rows') };
}

/** Describe and Close: 'S' statement or 'P' portal, and its name. */
export function parseTarget(body: Uint8Array): { kind: 'S' | 'P'; name: string } {
  const r = new Reader(body);
  const kind = String.fromCharCode(r.byte('target kind'));
  if (kind !== 'S' && kind !== 'P') throw new PgMessageError('Describe/Close: target kind must be S or P');
  return { kind, name: r.cstring('target name') };
}

export function parseCommandComplete(body: Uint8Array): string {
  return new Reader(body).cstring('command tag');
}

/**
 * Rows from a command tag, where the tag carries them: `INSERT oid n`, `SELECT n`, `UPDATE n`,
 * `DELETE n`, `MERGE n`, `FETCH n`, `MOVE n`, `COPY n`. Undefined for tags without a count.
 */
export function rowsFromTag(tag: string): number | undefined {
  const m = /^(?:INSERT \d+|SELECT|UPDATE|DELETE|MERGE|FETCH|MOVE|COPY) (\d+)$/.exec(tag);
  return m ? Number(m[1]) : undefined;
}

export interface ErrorFields {
  /** SQLSTATE (field 'C'). */
  sqlstate?: string;
  /** Primary message (field 'M'). */
  message?: string;
  /** Severity, not localized (field 'V'), else localized ('S'). */
  severity?: string;
}
export function parseErrorResponse(body: Uint8Array): ErrorFields {
  const r = new Reader(body);
  const out: ErrorFields = {};
  for (;;) {
    const code = r.byte('field code');
    if (code === 0) return out;
    const value = r.cstring('field value');
    if (code === 0x43) out.sqlstate = value; // 'C'
    else if (code === 0x4d) out.message = value; // 'M'
    else if (code === 0x56 || (code === 0x53 && out.severity === undefined)) out.severity = value; // 'V' | 'S'
  }
}

/** Bytes of column values in a DataRow (length-prefixed values; NULL = -1 counts 0). */
export function dataRowBytes(body: Uint8Array): number {
  const r = new Reader(body);
  const n = r.int16('column count');
  let total = 0;
  for (let i = 0; i < n; i++) {
    const len = r.int32('column length');
    if (len > 0) {
      r.bytes(len, 'column value');
      total += len;
    }
  }
  return total;
}

/** RowDescription: per field its name, type OID and format code (0 text, 1 binary). */
export function parseRowDescription(body: Uint8Array): { names: string[]; types: number[]; formats: number[] } {
  const r = new Reader(body);
  const n = r.int16('field count');
  const names: string[] = [];
  const types: number[] = [];
  const formats: number[] = [];
  for (let i = 0; i < n; i++) {
    names.push(r.cstring('field name'));
    r.int32('table oid');
    r.int16('attribute number');
    types.push(r.int32('type oid') >>> 0);
    r.int16('type size');
    r.int32('type modifier');
    formats.push(r.int16('format code'));
  }
  return { names, types, formats };
}

/** Types whose binary form is their UTF-8 text (text, varchar, bpchar, name, json, xml, unknown). */
const TEXT_BINARY = new Set([25, 1043, 1042, 19, 114, 142, 705]);

/**
 * DataRow values for a preview: text-format values as text, cut at `maxBytes` (at the last space
 * before the cut, so a half item is not kept where detectors could no longer recognise it);
 * binary values of text types as text, other binary values as '[binary]'.
 */
export function dataRowValues(body: Uint8Array, maxBytes: number, formats?: readonly number[], types?: readonly number[]): (string | null)[] {
  const r = new Reader(body);
  const n = r.int16('column count');
  const out: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32('column length');
    if (len < 0) {
      out.push(null);
      continue;
    }
    const v = r.bytes(len, 'column value');
    const binary = formats?.[i] === 1;
    if (binary && !TEXT_BINARY.has(types?.[i] ?? 0)) {
      out.push('[binary]');
      continue;
    }
    if (v.length <= maxBytes) {
      out.push(utf8.decode(v));
      continue;
    }
    const text = utf8.decode(v.subarray(0, maxBytes));
    const cut = text.search(/\s\S*$/);
    out.push(`${cut > 0 ? text.slice(0, cut) : ''}…`);
  }
  return out;
}
