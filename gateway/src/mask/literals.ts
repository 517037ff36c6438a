/**
 * Masking a statement's own text and parameters before it is stored (ingest, at rest) or logged
 * (gateway, `mask_before_log`). A client can put a masked column's value in the statement itself:
 * `WHERE ssn = '123-45-6789'`, `INSERT … VALUES (…, '123-45-6789')`, `UPDATE … SET ssn = $1`.
 *
 *   const m = maskStatementText(text, plan, catalog);   // text with those literals masked, then detectors
 *   const params = maskParams(bindParams, m.params, plan);
 *
 * Which literals: the parse tree's literal sites (lineage.ts, `LiteralSink`) — constants and `$n`
 * parameters in an operator, function call or CASE/COALESCE together with a column, or assigned to
 * a column by INSERT/UPDATE/MERGE/ON CONFLICT — whose column is covered by a mask rule, or is
 * undecidable while column rules apply (then the strongest column rule). Each such literal is
 * replaced in the original text, token for token (PostgreSQL's own scanner gives its extent), by
 * the strategy's value as a quoted literal (`'[REDACTED]'`, `'hmac:…'` computed over the literal's
 * value, so it equals the hash the client would have received for that value, `'*****6789'`) or
 * `NULL`. Then every detector of the rules runs over the whole text.
 *
 * Text the parser refuses (it never reached the target on a governed target, but it is recorded):
 * while column rules apply, every constant token is masked with the strongest column rule.
 */
import { parseSync, scanSync } from 'libpg-query';
import type { MaskChoice } from '../policy/mask.ts';
import { stronger } from '../policy/mask.ts';
import type { Detector } from '../policy/schema.ts';
import type { MaskPlan } from './engine.ts';
import { LineageBuilder, type CatalogLookup, type Lin } from './lineage.ts';
import { REDACTED } from './strategies.ts';

type Obj = Record<string, unknown>;

export interface StatementMask {
  /** The text to store. */
  readonly text: string;
  /** `$n` (1-based) whose value meets a masked column → its strategy. */
  readonly params: ReadonlyMap<number, MaskChoice>;
  /** Literals replaced because of a column rule. */
  readonly literals: number;
  /** The replaced literals' values (≥ 4 characters): an error message or result may echo them. */
  readonly values: readonly string[];
  /** Detector hits over the text. */
  readonly hits: ReadonlyMap<Detector, number>;
}

/** The lineage catalog, optionally deciding its own sources (policy-catalog.ts). */
export type LiteralCatalog = CatalogLookup & { choice?(source: string): MaskChoice | undefined };

interface Token {
  start: number;
  end: number;
  text: string;
  tokenName: string;
}

const CONSTANT_TOKENS = new Set(['SCONST', 'USCONST', 'ICONST', 'FCONST', 'BCONST', 'XCONST']);
/** B'…', X'…', N'…', E'…', U&'…' come back from the scanner as UNKNOWN in some versions. */
const PREFIXED_STRING = /^(?:[bBxXnNeE]|[uU]&)'/;
const MIN_ECHO = 4;

function pick(best: MaskChoice | undefined, c: MaskChoice | undefined): MaskChoice | undefined {
  return c !== undefined && (best === undefined || stronger(c, best)) ? c : best;
}

/** The value an A_Const node stands for, as PostgreSQL would read it (undefined for NULL). */
function constValue(c: Obj): string | undefined {
  if (c.isnull) return undefined;
  const s = c.sval as Obj | undefined;
  if (s) return String(s.sval ?? '');
  const i = c.ival as Obj | undefined;
  if (i) return String(i.ival ?? 0);
  const f = c.fval as Obj | undefined;
  if (f) return String(f.fval ?? '');
  const b = c.boolval as Obj | undefined;
  if (b) return b.boolval ? 'true' : 'false';
  const bs = c.bsval as Obj | undefined;
  if (bs) return String(bs.bsval ?? '');
  return undefined;
}

/** Constants (by byte location) and parameters (by number) in a subtree. */
function collect(node: unknown, choice: MaskChoice, consts: Map<number, { choice: MaskChoice; value: string | undefined }>, params: Map<number, MaskChoice>, depth = 0): void {
  if (node === null || typeof node !== 'object' || depth > 400) return;
  if (Array.isArray(node)) {
    for (const x of node) collect(x, choice, consts, params, depth + 1);
    return;
  }
  for (const [k, v] of Object.entries(node as Obj)) {
    if (k === 'A_Const' && v && typeof v === 'object') {
      const c = v as Obj;
      if (typeof c.location !== 'number' || c.isnull) continue;
      const prev = consts.get(c.location);
      consts.set(c.location, { choice: pick(prev?.choice, choice)!, value: constValue(c) });
    } else if (k === 'ParamRef' && v && typeof v === 'object') {
      const n = (v as Obj).number;
      if (typeof n === 'number') params.set(n, pick(params.get(n), choice)!);
    } else if (v && typeof v === 'object') collect(v, choice, consts, params, depth + 1);
  }
}

function quote(v: string | null): string {
  return v === null ? 'NULL' : `'${v.replaceAll("'", "''")}'`;
}

function scan(text: string): Token[] | undefined {
  try {
    return (scanSync(text) as { tokens: Token[] }).tokens;
  } catch {
    return undefined;
  }
}

/** Binary search: the token starting at byte `at`. */
function tokenAt(tokens: Token[], at: number): number {
  let lo = 0;
  let hi = tokens.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = tokens[mid]!.start;
    if (s === at) return mid;
    if (s < at) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

function isConstantToken(t: Token): boolean {
  return CONSTANT_TOKENS.has(t.tokenName) || PREFIXED_STRING.test(t.text);
}

export interface MaskStatementOptions {
  /** Mask every constant with the strongest column rule, whatever it meets (ingest without a policy). */
  everyConstant?: boolean;
}

export function maskStatementText(text: string, plan: MaskPlan, catalog: LiteralCatalog, options: MaskStatementOptions = {}): StatementMask {
  const params = new Map<number, MaskChoice>();
  const values: string[] = [];
  let literals = 0;
  let out = text;
  if (plan.hasColumns && text.length > 0) {
    const bytes = Buffer.from(text, 'utf8');
    const edits: { start: number; end: number; with: string }[] = [];
    const tokens = scan(text);
    let stmts: Obj[] | undefined;
    if (!options.everyConstant) {
      try {
        stmts = (parseSync(text) as { stmts?: { stmt: Obj }[] }).stmts?.map((s) => s.stmt) ?? [];
      } catch {
        stmts = undefined;
      }
    }
    const resolve = (lin: Lin): MaskChoice | undefined => {
      let best: MaskChoice | undefined;
      for (const src of lin.sources) best = pick(best, catalog.choice?.(src) ?? plan.column(src));
      if (lin.opaque) best = pick(best, plan.strongestColumn);
      return best;
    };
    const consts = new Map<number, { choice: MaskChoice; value: string | undefined }>();
    let wholesale = stmts === undefined || tokens === undefined;
    if (!wholesale) {
      const sink = (node: unknown, lin: Lin): void => {
        const choice = resolve(lin);
        if (choice !== undefined) collect(node, choice, consts, params);
      };
      for (const stmt of stmts!) {
        try {
          new LineageBuilder(catalog, sink).statement(stmt);
        } catch {
          wholesale = true; // a tree this code does not model: mask every constant rather than guess
        }
      }
      for (const [at, { choice, value }] of consts) {
        const i = tokenAt(tokens!, at);
        if (i < 0) {
          wholesale = true;
          break;
        }
        let end = tokens![i]!.end;
        if (tokens![i]!.text === '-' && tokens![i + 1]) end = tokens![i + 1]!.end; // -5 is one constant
        const v = value ?? bytes.toString('utf8', at, end);
        edits.push({ start: at, end, with: quote(plan.maskWhole(v, Buffer.from(v, 'utf8'), choice)) });
        if (v.length >= MIN_ECHO) values.push(v);
      }
    }
    if (wholesale && plan.strongestColumn) {
      edits.length = 0;
      values.length = 0;
      const strongest = plan.strongestColumn;
      for (const t of tokens ?? []) {
        if (!isConstantToken(t)) continue;
        const v = t.text;
        edits.push({ start: t.start, end: t.end, with: quote(plan.maskWhole(v, Buffer.from(v, 'utf8'), strongest)) });
        if (v.length >= MIN_ECHO) values.push(v);
      }
      if (tokens === undefined) out = REDACTED; // not even scannable: nothing of it can be shown
    }
    if (edits.length > 0) {
      edits.sort((a, b) => a.start - b.start);
      const parts: Buffer[] = [];
      let at = 0;
      for (const e of edits) {
        if (e.start < at) continue;
        parts.push(bytes.subarray(at, e.start), Buffer.from(e.with, 'utf8'));
        at = e.end;
      }
      parts.push(bytes.subarray(at));
      out = Buffer.concat(parts).toString('utf8');
      literals = edits.length;
    }
  }
  const r = plan.scan(out);
  return { text: r ? (r.text ?? REDACTED) : out, params, literals, values, hits: r?.hits ?? new Map() };
}

/**
 * Bind parameters as stored: a parameter that meets a masked column takes that column's strategy
 * (null → SQL NULL), every other one passes through the detectors. Binary-format parameters are
 * stored as `\x…` hex by the decoder; a column rule still applies to them.
 */
export function maskParams(params: readonly (string | null)[], byColumn: ReadonlyMap<number, MaskChoice>, plan: MaskPlan, hits?: Map<Detector, number>): (string | null)[] {
  if (plan === undefined || (!plan.hasDetectors && byColumn.size === 0)) return [...params];
  return params.map((v, i) => {
    if (v === null) return null;
    const c = byColumn.get(i + 1);
    if (c !== undefined) return plan.maskWhole(v, Buffer.from(v, 'utf8'), c);
    const r = plan.scan(v);
    if (r && hits) for (const [d, n] of r.hits) hits.set(d, (hits.get(d) ?? 0) + n);
    return r ? r.text : v;
  });
}

/** Text that may echo a masked literal (an error message, a result value): the values are redacted. */
export function scrubValues(text: string, values: readonly string[]): string {
  let out = text;
  for (const v of values) if (v.length >= MIN_ECHO && out.includes(v)) out = out.replaceAll(v, REDACTED);
  return out;
}
