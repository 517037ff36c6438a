/**
 * `masking.mask_before_log`: what the event log records of what the CLIENT sent, for deployments
 * where even the log must not hold raw values (the s2c side is always recorded as delivered, i.e.
 * masked). No I/O; mask-stream.ts owns one per session and the session asks it per message.
 *
 * - Query and Parse text: literals that meet a masked column (gateway/src/mask/literals.ts, with
 *   the target's catalog snapshot, so views are followed; with the rules alone before the first
 *   snapshot), then the detectors of the statement's rules.
 * - Bind: a parameter whose `$n` meets a masked column in the prepared statement takes that
 *   column's strategy; the others pass the detectors.
 * - COPY … FROM STDIN data (text/csv): re-cut on line boundaries (a row split across CopyData
 *   messages is recorded whole, with the message that completes it; a last line without newline
 *   is recorded before CopyDone) and masked per column like COPY TO STDOUT; binary COPY data is
 *   recorded empty while column rules apply (its values cannot be masked in place).
 * - `policy.blocked.statement` and `approval.requested.statement` (and its mirror for approvers):
 *   the same statement masking.
 */
import { evaluate, type Identity, type MaskDirective } from '../../policy/index.ts';
import type { MaskChoice } from '../../policy/mask.ts';
import { NO_MASK, type MaskPlan } from '../../mask/engine.ts';
import { maskParams, maskStatementText, type LiteralCatalog } from '../../mask/literals.ts';
import { policyCatalog } from '../../mask/policy-catalog.ts';
import type { PolicyRuntime } from './enforce.ts';
import type { MaskRuntime } from './mask-stream.ts';
import type { TargetCatalog } from './catalog.ts';
import { copyFormat, rewriteCopyData, type ColumnPlan, type CopyState } from './mask-rows.ts';

type Obj = Record<string, unknown>;

export interface LogMaskerOptions {
  policy: PolicyRuntime;
  mask: MaskRuntime;
  identity: Identity;
  target_id: string;
  catalog: TargetCatalog;
  encoding(): BufferEncoding;
}

const F = { Query: 0x51, Parse: 0x50, Bind: 0x42, CopyData: 0x64, CopyDone: 0x63, CopyFail: 0x66 } as const;
const MAX_NAMES = 10_000;

const cstr = (m: Buffer, off: number): { text: string; end: number } | undefined => {
  const end = m.indexOf(0, off);
  return end < 0 ? undefined : { text: m.toString('utf8', off, end), end };
};

function typed(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

export class PgLogMasker {
  /** Prepared statements' parameter masks, by statement name. */
  private readonly params = new Map<string, { plan: MaskPlan; byColumn: ReadonlyMap<number, MaskChoice> }>();
  private copy: { plan: ColumnPlan; state: CopyState; pending: Buffer; binary: boolean } | undefined;

  constructor(private readonly o: LogMaskerOptions) {}

  private planOf(text: string): { plan: MaskPlan; catalog: LiteralCatalog } {
    const dirs = new Set<MaskDirective>();
    const now = new Date();
    for (const a of this.o.policy.analyser.analyse(text)) {
      for (const d of evaluate(this.o.policy.current(), { identity: this.o.identity, target_id: this.o.target_id, now, statement: a }).mask) dirs.add(d);
    }
    if (dirs.size === 0) return { plan: NO_MASK, catalog: { relations: () => [] } };
    const directives = [...dirs];
    return { plan: this.o.mask.engine.plan(directives), catalog: this.o.catalog.last() ?? policyCatalog(directives) };
  }

  /** A statement's text as the log records it. */
  statement(text: string): string {
    const { plan, catalog } = this.planOf(text);
    return plan === NO_MASK ? text : maskStatementText(text, plan, catalog).text;
  }

  /** A client message as the log records it: one message, or several (COPY re-cut on lines). */
  message(type: number, m: Buffer): Buffer | [number, Buffer][] {
    switch (type) {
      case F.Query: {
        const sql = cstr(m, 5);
        if (!sql) return m;
        const text = this.statement(sql.text);
        return text === sql.text ? m : typed(type, Buffer.from(`${text}\0`, 'utf8'));
      }
      case F.Parse: {
        const name = cstr(m, 5);
        const sql = name && cstr(m, name.end + 1);
        if (!name || !sql) return m;
        const { plan, catalog } = this.planOf(sql.text);
        if (plan === NO_MASK) {
          this.params.delete(name.text);
          return m;
        }
        const r = maskStatementText(sql.text, plan, catalog);
        this.params.delete(name.text);
        this.params.set(name.text, { plan, byColumn: r.params });
        if (this.params.size > MAX_NAMES) this.params.delete(this.params.keys().next().value as string);
        if (r.text === sql.text) return m;
        return typed(type, Buffer.concat([m.subarray(5, name.end + 1), Buffer.from(`${r.text}\0`, 'utf8'), m.subarray(sql.end + 1)]));
      }
      case F.Bind:
        return this.bind(m);
      case F.CopyData:
        return this.copyData(m);
      case F.CopyDone:
      case F.CopyFail: {
        const rest = this.copyEnd();
        return rest ? [[F.CopyData, rest], [type, m]] : m;
      }
      default:
        return m;
    }
  }

  private bind(m: Buffer): Buffer {
    const portal = cstr(m, 5);
    const stmtName = portal && cstr(m, portal.end + 1);
    if (!portal || !stmtName) return m;
    const p = this.params.get(stmtName.text);
    if (!p || (!p.plan.hasDetectors && p.byColumn.size === 0)) return m;
    const enc = this.o.encoding();
    let off = stmtName.end + 1;
    const nFormats = m.readInt16BE(off);
    const formats: number[] = [];
    for (let i = 0; i < nFormats; i++) formats.push(m.readInt16BE(off + 2 + i * 2));
    off += 2 + nFormats * 2;
    const nParams = m.readInt16BE(off);
    const head = m.subarray(5, off + 2);
    off += 2;
    const values: (string | null)[] = [];
    const binary: boolean[] = [];
    const raw: (Buffer | undefined)[] = [];
    for (let i = 0; i < nParams; i++) {
      const len = m.readInt32BE(off);
      const v = len < 0 ? undefined : m.subarray(off + 4, off + 4 + len);
      off += 4 + Math.max(0, len);
      const fmt = nFormats === 0 ? 0 : nFormats === 1 ? formats[0]! : (formats[i] ?? 0);
      raw.push(v);
      binary.push(fmt === 1);
      values.push(v === undefined ? null : v.toString(enc));
    }
    const masked = maskParams(values, p.byColumn, p.plan);
    let changed = false;
    const parts: Buffer[] = [head];
    for (let i = 0; i < nParams; i++) {
      // A binary parameter is masked only by its column (detectors read text); its placeholder is text bytes.
      const keep = binary[i] && !p.byColumn.has(i + 1);
      const out = keep || masked[i] === values[i] ? raw[i] : masked[i] === null ? undefined : Buffer.from(masked[i]!, enc);
      if (out !== raw[i]) changed = true;
      const len = Buffer.alloc(4);
      len.writeInt32BE(out === undefined ? -1 : out.length);
      parts.push(len, ...(out ? [out] : []));
    }
    parts.push(m.subarray(off));
    return changed ? typed(F.Bind, Buffer.concat(parts)) : m;
  }

  /** The target answered CopyInResponse for `tree` (a CopyStmt … FROM STDIN): plan its columns. */
  copyIn(tree: Obj | undefined, text: string | undefined, binaryResponse: boolean): void {
    this.copy = undefined;
    if (text === undefined) return;
    const { plan } = this.planOf(text);
    if (plan === NO_MASK) return;
    const copy = tree?.CopyStmt as Obj | undefined;
    const rel = copy?.relation as Obj | undefined;
    const schema = typeof rel?.schemaname === 'string' ? rel.schemaname : undefined;
    const name = typeof rel?.relname === 'string' ? rel.relname : undefined;
    const attlist = (Array.isArray(copy?.attlist) ? copy.attlist : []).map((a) => (a as { String?: { sval?: string } }).String?.sval ?? '');
    const found = name ? (this.o.catalog.last()?.relations(schema, name) ?? []) : [];
    const columns = attlist.length > 0 ? attlist : (found[0]?.columns ?? []);
    // Unknown relation or columns: every field may be the masked one.
    const undecided = plan.hasColumns && (found.length === 0 || columns.length === 0);
    const choiceOf = (col: string): MaskChoice | undefined => {
      if (undecided) return plan.strongestColumn;
      let best: MaskChoice | undefined;
      for (const r of found) {
        const c = plan.column(`${r.schema}.${r.name}.${col}`);
        if (c && (!best || c.strategy === 'null' || best.strategy === 'partial')) best = c;
      }
      return best;
    };
    const width = Math.max(columns.length, 1600); // a row never has more than PostgreSQL's 1600 columns
    const choices = Array.from({ length: width }, (_, i) => (i < columns.length ? choiceOf(columns[i]!) : undecided ? plan.strongestColumn : undefined));
    const format = copyFormat(Array.isArray(copy?.options) ? copy.options : []);
    const fields = choices.map((_, i) => ({ name: columns[i] ?? `column${i + 1}`, tableOid: 0, attnum: 0, typeOid: 0, format: 0 }));
    this.copy = {
      plan: { fields, choices, reasons: choices.map(() => undefined), mask: plan, encoding: this.o.encoding(), counts: choices.map(() => 0), hits: new Map(), rows: 0 },
      state: { format, pendingHeader: true },
      pending: Buffer.alloc(0),
      binary: binaryResponse || format.kind === 'binary',
    };
  }

  private copyData(m: Buffer): Buffer {
    const c = this.copy;
    if (!c) return m;
    if (c.binary) return c.plan.mask.hasColumns ? typed(F.CopyData, Buffer.alloc(0)) : m;
    const data = c.pending.length > 0 ? Buffer.concat([c.pending, m.subarray(5)]) : m.subarray(5);
    const last = data.lastIndexOf(0x0a);
    c.pending = Buffer.from(data.subarray(last + 1));
    const out: Buffer[] = [];
    let at = 0;
    while (at <= last) {
      const nl = data.indexOf(0x0a, at);
      const line = data.subarray(at, nl + 1);
      at = nl + 1;
      out.push(isEndMarker(line) ? line : rewriteCopyData(line, c.plan, c.state));
    }
    return typed(F.CopyData, Buffer.concat(out));
  }

  /** COPY data ended: the unterminated last line, masked, if any. */
  private copyEnd(): Buffer | undefined {
    const c = this.copy;
    this.copy = undefined;
    if (!c || c.binary || c.pending.length === 0) return undefined;
    return typed(F.CopyData, isEndMarker(c.pending) ? c.pending : rewriteCopyData(c.pending, c.plan, c.state));
  }

  /** The copy sub-protocol ended on the target's side (CommandComplete or ErrorResponse). */
  copyDone(): void {
    this.copy = undefined;
  }
}

/** `\.` ends text-format COPY data. */
function isEndMarker(line: Buffer): boolean {
  const s = line.toString('latin1').replace(/\r?\n$/, '');
  return s === '\\.';
}
