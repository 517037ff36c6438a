/**
 * Inline masking toward the caller (issue 3, "Inline masking") for one PostgreSQL session. Like
 * enforce.ts it does no I/O: the session shows it every client message (`fromClient`, which may add
 * bytes) and every target message (`fromServer`), and it delivers what the client receives through
 * `deliver`. Masking is decided per RESULT COLUMN, once per RowDescription (or COPY header):
 *
 *   masked = the column's origin (RowDescription table OID + attnum → schema.table.column, via the
 *            target's catalog) is covered by a mask rule
 *         OR its lineage (lineage.ts: the parse tree, views followed) reaches a covered column
 *         OR its lineage is undecidable (opaque function, unknown relation, …) while column rules
 *            are in force → masked with the strongest column rule ("mask, don't block")
 *
 * and value detectors scan every text value when the statement's rules name detectors.
 *
 * Pairing responses with statements: each client message that the target answers pushes an
 * expectation (simple Query: its statements in order until ReadyForQuery; Parse/Bind/Describe/
 * Execute/Close/Sync; FunctionCall). After an error in the extended protocol the target skips to
 * Sync, and so do the expectations. A response that matches no expectation is a desync: the
 * session is ended (`onFatal`) rather than risk delivering an unmasked row.
 *
 * Execute without Describe: the client already knows the row shape and gets no RowDescription,
 * so the gateway adds a Describe (portal) before the Execute and swallows its answer: every result
 * it rewrites has been described.
 *
 * Cursors: DECLARE … CURSOR FOR q (SQL) is remembered by name; FETCH/MOVE results are masked with
 * q's lineage (plus RowDescription origins). A FETCH from a cursor the gateway did not see declared
 * (e.g. a refcursor opened inside a function) is undecidable.
 *
 * Laundering: a write that stores values derived from a masked column (INSERT … SELECT ssn,
 * UPDATE … SET note = ssn, CREATE TABLE AS, SELECT INTO) would let the caller read them back
 * unmasked from elsewhere; `writeVeto` reports it so the enforcer blocks the statement.
 *
 * Catalog waits: when a decision needs a catalog snapshot that is not loaded (or names an OID or a
 * relation the snapshot lacks), delivery stalls — later target messages queue in order, the target
 * socket is paused — until the refresh ends; then the result is decided with the fresh catalog.
 */
import { parseSync } from 'libpg-query';
import { evaluate, type Identity } from '../../policy/index.ts';
import type { MaskChoice } from '../../policy/mask.ts';
import { stronger } from '../../policy/mask.ts';
import type { SqlAnalysis } from '../../sql/analyse.ts';
import type { MaskEngine, MaskPlan } from '../../mask/engine.ts';
import { NO_MASK } from '../../mask/engine.ts';
import { lineageOf, type Lin, type Lineage } from '../../mask/lineage.ts';
import { normalizeNumerics } from '../../sql/normalize.ts';
import type { Detector } from '../../policy/schema.ts';
import type { MaskApplied } from '@vigil/schemas';
import type { PolicyRuntime } from './enforce.ts';
import { FIRST_NORMAL_OBJECT_ID, type CatalogSnapshot, type TargetCatalog } from './catalog.ts';
import { PgLogMasker } from './mask-log.ts';
import {
  copyFormat,
  parseRowDescription,
  rewriteCopyData,
  rewriteDataRow,
  rewriteFunctionResult,
  rewriteRowDescription,
  scrubError,
  type ColumnPlan,
  type CopyState,
} from './mask-rows.ts';

type Obj = Record<string, unknown>;

/** What the gateway holds when masking is possible (a policy file is configured). */
export interface MaskRuntime {
  readonly engine: MaskEngine;
  /** gateway.masking.mask_before_log: client frames pass through the detectors before they are recorded. */
  readonly mask_before_log: boolean;
  readonly catalog_ttl_ms: number;
}

export type MaskReport = Omit<MaskApplied, 'type' | 'version' | 'event_id' | 'time' | 'session_id' | 'seq' | 'prev_hash' | 'hash' | 'gateway_id' | 'gateway_version'>;

export interface MaskStreamOptions {
  policy: PolicyRuntime;
  mask: MaskRuntime;
  identity: Identity;
  target_id: string;
  catalog: TargetCatalog;
  /** Deliver one message to the client (and record it). */
  deliver(message: Buffer, type: number): void;
  /** Stop / restart reading the target while a catalog load is awaited. */
  pauseTarget(on: boolean): void;
  onApplied(report: MaskReport): void;
  /** Protocol desync or an internal failure: end the session (never deliver unmasked data). */
  onFatal(reason: string): void;
  /** A DDL statement completed: the catalog is stale for everyone. */
  onDdl(): void;
}

/** One statement as masking sees it. */
interface Stmt {
  readonly text: string;
  readonly analysis: SqlAnalysis;
  /** Lazily parsed top-level node. */
  tree(): Obj | undefined;
  /** For FETCH: the cursor's declaring statement. */
  via?: Stmt;
  kind: 'simple' | 'extended';
}

interface Portal {
  readonly stmt: Stmt | undefined;
  described: boolean;
  plan: ColumnPlan | null | undefined;
}

type Expect =
  | { k: 'query'; stmts: Stmt[]; i: number; failed: boolean }
  | { k: 'parse'; stmt: Stmt }
  | { k: 'bind' }
  | { k: 'describeS'; stmt: Stmt | undefined }
  | { k: 'describeP'; portal: Portal; injected: boolean }
  | { k: 'execute'; portal: Portal }
  | { k: 'close' }
  | { k: 'sync' }
  | { k: 'fcall' };

const F = { Query: 0x51, Parse: 0x50, Bind: 0x42, Describe: 0x44, Execute: 0x45, Close: 0x43, Sync: 0x53, FunctionCall: 0x46, Flush: 0x48 } as const;
const MAX_NAMES = 10_000;
const PARSE_CACHE_MAX = 2000;

/**
 * Parse trees by statement text with numeric literals normalised (sql/normalize.ts): statements that
 * differ only in inlined numbers share one tree. What is read from a tree here (lineage, cursor and
 * relation names, node kinds, locations) never depends on a numeric constant's value, and the
 * normalised text keeps every length, so locations are the original's.
 */
const parseCache = new Map<string, Obj[] | null>();
function parseAll(text: string): Obj[] | null {
  const key = normalizeNumerics(text) ?? text;
  let hit = parseCache.get(key);
  if (hit === undefined) {
    try {
      hit = (parseSync(key) as { stmts?: { stmt: Obj }[] }).stmts?.map((s) => s.stmt) ?? [];
    } catch {
      hit = key === text ? null : parseAllExact(text);
    }
    if (parseCache.size >= PARSE_CACHE_MAX) parseCache.delete(parseCache.keys().next().value as string);
    if (text.length < 64 * 1024) parseCache.set(key, hit);
  }
  return hit;
}

function parseAllExact(text: string): Obj[] | null {
  try {
    return (parseSync(text) as { stmts?: { stmt: Obj }[] }).stmts?.map((s) => s.stmt) ?? [];
  } catch {
    return null;
  }
}

/** Lineage per parse tree (trees are shared through parseCache) and catalog snapshot: computed once. */
const lineageCache = new WeakMap<Obj, { snap: CatalogSnapshot; lineage: Lineage }>();
function cachedLineage(tree: Obj, snap: CatalogSnapshot): Lineage {
  const hit = lineageCache.get(tree);
  if (hit !== undefined && hit.snap === snap) return hit.lineage;
  const lineage = lineageOf(tree, snap);
  lineageCache.set(tree, { snap, lineage });
  return lineage;
}

const cstr = (m: Buffer, off: number): { text: string; end: number } | undefined => {
  const end = m.indexOf(0, off);
  return end < 0 ? undefined : { text: m.toString('utf8', off, end), end };
};

function describePortal(name: string): Buffer {
  const body = Buffer.from(`P${name}\0`, 'utf8');
  const b = Buffer.alloc(5 + body.length);
  b[0] = F.Describe;
  b.writeUInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

export class PgMaskStream {
  private readonly queue: Expect[] = [];
  private readonly statements = new Map<string, Stmt>();
  private readonly portals = new Map<string, Portal>();
  private readonly cursors = new Map<string, Stmt>();
  private skipUntilSync = false;
  private encoding: BufferEncoding = 'utf8';
  /** Target messages waiting while a catalog load is awaited. */
  private held: [number, Buffer][] | undefined;
  /** Current simple-query or execute result's plan and COPY state. */
  private plan: ColumnPlan | null = null;
  private copy: CopyState | undefined;
  private dead = false;
  private activeLatch = false;

  /** Tracking only (the session forwards whole chunks while no mask rule applies): deliver nothing. */
  private silent = false;

  /** mask_before_log: what the log records of client messages (mask-log.ts). */
  private readonly log: PgLogMasker;

  constructor(private readonly o: MaskStreamOptions) {
    this.log = new PgLogMasker({ policy: o.policy, mask: o.mask, identity: o.identity, target_id: o.target_id, catalog: o.catalog, encoding: () => this.encoding });
  }

  private out(m: Buffer, type: number): void {
    if (!this.silent) this.o.deliver(m, type);
  }

  /** Follow a target message the session forwarded itself (fast path, no mask rule applies). */
  observe(type: number, message: Buffer): void {
    this.silent = true;
    try {
      this.fromServer(type, message);
    } finally {
      this.silent = false;
    }
  }

  /**
   * True while some mask rule applies to this target: the session must hand over target messages
   * one by one. Latches on: a policy reload that adds masks takes effect at the next result.
   */
  get active(): boolean {
    if (this.activeLatch) return true;
    const view = this.o.policy.current().forTarget(this.o.target_id);
    if (view.rules.some((r) => r.mask !== undefined)) this.activeLatch = true;
    return this.activeLatch;
  }

  // ---- client side -------------------------------------------------------------------------

  /** A complete client message; returns the bytes to forward (`forward`, possibly with a Describe before it). */
  fromClient(type: number, message: Buffer, forward: Buffer): Buffer {
    if (this.skipUntilSync && type !== F.Sync) return forward;
    switch (type) {
      case F.Query: {
        const sql = cstr(message, 5);
        const stmts = sql ? this.simpleStatements(sql.text) : [];
        this.queue.push({ k: 'query', stmts, i: 0, failed: false });
        return forward;
      }
      case F.Parse: {
        const name = cstr(message, 5);
        const sql = name && cstr(message, name.end + 1);
        if (!name || !sql) return forward;
        const stmt = this.extendedStatement(sql.text);
        this.remember(this.statements, name.text, stmt);
        this.queue.push({ k: 'parse', stmt });
        return forward;
      }
      case F.Bind: {
        const portal = cstr(message, 5);
        const stmt = portal && cstr(message, portal.end + 1);
        if (!portal || !stmt) return forward;
        this.remember(this.portals, portal.text, { stmt: this.statements.get(stmt.text), described: false, plan: undefined });
        this.queue.push({ k: 'bind' });
        return forward;
      }
      case F.Describe: {
        const kind = message[5];
        const name = cstr(message, 6)?.text ?? '';
        if (kind === 0x53) this.queue.push({ k: 'describeS', stmt: this.statements.get(name) });
        else {
          const portal = this.portalOf(name);
          portal.described = true;
          this.queue.push({ k: 'describeP', portal, injected: false });
        }
        return forward;
      }
      case F.Execute: {
        const name = cstr(message, 5)?.text ?? '';
        const portal = this.portalOf(name);
        let out = forward;
        if (!portal.described && this.active) {
          portal.described = true;
          this.queue.push({ k: 'describeP', portal, injected: true });
          out = Buffer.concat([describePortal(name), forward]);
        }
        this.queue.push({ k: 'execute', portal });
        return out;
      }
      case F.Close: {
        const name = cstr(message, 6)?.text ?? '';
        if (message[5] === 0x53) this.statements.delete(name);
        else this.portals.delete(name);
        this.queue.push({ k: 'close' });
        return forward;
      }
      case F.Sync:
        this.skipUntilSync = false;
        this.queue.push({ k: 'sync' });
        // Unnamed portals do not survive the transaction; named ones are closed by the client.
        return forward;
      case F.FunctionCall:
        this.queue.push({ k: 'fcall' });
        return forward;
      default:
        return forward;
    }
  }

  private portalOf(name: string): Portal {
    let p = this.portals.get(name);
    if (!p) this.portals.set(name, (p = { stmt: undefined, described: false, plan: undefined }));
    return p;
  }

  private remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > MAX_NAMES) map.delete(map.keys().next().value as string);
  }

  private simpleStatements(text: string): Stmt[] {
    const analyses = this.o.policy.analyser.analyse(text);
    return analyses.map((a, i) => this.stmtOf(text, a, i, 'simple'));
  }

  private extendedStatement(text: string): Stmt {
    return this.stmtOf(text, this.o.policy.analyser.analyseOne(text), 0, 'extended');
  }

  private stmtOf(text: string, analysis: SqlAnalysis, index: number, kind: Stmt['kind']): Stmt {
    const stmt: Stmt = {
      text: analysis.text,
      analysis,
      kind,
      tree: () => parseAll(text)?.[index],
    };
    // Cursors: DECLARE remembers, FETCH/MOVE follow, CLOSE forgets.
    if (analysis.kind === 'DeclareCursorStmt') {
      const name = (stmt.tree()?.DeclareCursorStmt as Obj | undefined)?.portalname;
      if (typeof name === 'string') this.remember(this.cursors, name, stmt);
    } else if (analysis.kind === 'FetchStmt') {
      const name = (stmt.tree()?.FetchStmt as Obj | undefined)?.portalname;
      stmt.via = typeof name === 'string' ? this.cursors.get(name) : undefined;
    }
    return stmt;
  }

  // ---- target side -------------------------------------------------------------------------

  /** A complete target message (after the enforcer's rewrite). */
  fromServer(type: number, message: Buffer): void {
    if (this.dead) return;
    if (this.held !== undefined) {
      this.held.push([type, message]);
      return;
    }
    try {
      this.handle(type, message);
    } catch (err) {
      this.fatal(`masking failed: ${(err as Error).message}`);
    }
  }

  private fatal(reason: string): void {
    if (this.dead) return;
    if (!this.activeLatch) {
      // Nothing is masked yet: a flow this tracker does not model costs nothing; start over.
      this.queue.length = 0;
      this.skipUntilSync = false;
      return;
    }
    this.dead = true;
    this.o.onFatal(reason);
  }

  private stall(wait: Promise<unknown>, type: number, message: Buffer): void {
    this.held = [[type, message]];
    this.o.pauseTarget(true);
    const resume = (): void => {
      const held = this.held ?? [];
      this.held = undefined;
      this.o.pauseTarget(false);
      for (const [t, m] of held) {
        if (this.dead) return;
        if ((this.held as [number, Buffer][] | undefined) !== undefined) this.held!.push([t, m]);
        else this.fromServer(t, m);
      }
    };
    wait.then(resume, resume);
  }

  private handle(type: number, m: Buffer): void {
    const letter = String.fromCharCode(type);
    if (letter === 'S') {
      const name = cstr(m, 5);
      if (name?.text === 'client_encoding') this.encoding = cstr(m, name.end + 1)?.text.toUpperCase() === 'UTF8' ? 'utf8' : 'latin1';
      return this.out(m, type);
    }
    if (letter === 'A') return this.out(this.scrubNotification(m), type);
    const head = this.queue[0];
    if (letter === 'N') return this.out(this.scrubNotice(m, head), type);
    if (head === undefined) {
      // Before the first client message (startup: BackendKeyData, ReadyForQuery) nothing is a result.
      if ('KZRv'.includes(letter) || letter === 'E') return this.out(m, type);
      return this.fatal(`unexpected target message '${letter}' with no request outstanding`);
    }
    if (letter === 'E') return this.onError(m, head);
    switch (head.k) {
      case 'query':
        return this.onQueryMessage(letter, m, head);
      case 'parse':
      case 'bind':
      case 'close':
        if (letter === ({ parse: '1', bind: '2', close: '3' } as const)[head.k]) {
          this.queue.shift();
          return this.out(m, type);
        }
        break;
      case 'describeS':
        if (letter === 't') return this.out(m, type);
        if (letter === 'n') {
          this.queue.shift();
          return this.out(m, type);
        }
        if (letter === 'T') {
          const plan = this.decide(head.stmt, m, type);
          if (plan === 'stalled') return;
          this.queue.shift();
          return this.out(plan ? rewriteRowDescription(m, plan.choices) : m, type);
        }
        break;
      case 'describeP':
        if (letter === 'n' || letter === 'T') {
          let plan: ColumnPlan | null = null;
          if (letter === 'T') {
            const p = this.decide(head.portal.stmt, m, type);
            if (p === 'stalled') return;
            plan = p;
          }
          this.queue.shift();
          head.portal.plan = plan;
          if (!head.injected) this.out(plan && letter === 'T' ? rewriteRowDescription(m, plan.choices) : m, type);
          return;
        }
        break;
      case 'execute':
        return this.onExecuteMessage(letter, m, head);
      case 'sync':
        if (letter === 'Z') {
          this.queue.shift();
          return this.out(m, type);
        }
        break;
      case 'fcall':
        if (letter === 'V') {
          const plan = this.planFor(undefined);
          const strongest = plan.strongestColumn;
          return this.out(strongest ? rewriteFunctionResult(m, strongest, plan) : m, type);
        }
        if (letter === 'Z') {
          this.queue.shift();
          return this.out(m, type);
        }
        break;
    }
    this.fatal(`target message '${letter}' does not match the outstanding request (${head.k})`);
  }

  private onQueryMessage(letter: string, m: Buffer, head: Extract<Expect, { k: 'query' }>): void {
    const type = m[0]!;
    const stmt = head.stmts[head.i];
    switch (letter) {
      case 'T': {
        const plan = this.decide(stmt, m, type);
        if (plan === 'stalled') return;
        this.plan = plan;
        return this.out(plan ? rewriteRowDescription(m, plan.choices) : m, type);
      }
      case 'D':
        return this.out(this.plan ? rewriteDataRow(m, this.plan) : m, type);
      case 'H':
        return this.onCopyOut(stmt, m, type);
      case 'd':
        return this.out(this.copyData(m), type);
      case 'G':
        this.logCopyIn(stmt, m);
        return this.out(m, type);
      case 'c':
        return this.out(m, type);
      case 'C':
      case 'I':
        this.log.copyDone();
        this.finishResult(stmt, letter === 'C');
        head.i++;
        return this.out(m, type);
      case 'Z':
        this.finishResult(undefined, false);
        this.queue.shift();
        return this.out(m, type);
    }
    this.fatal(`target message '${letter}' does not match the outstanding simple query`);
  }

  private onExecuteMessage(letter: string, m: Buffer, head: Extract<Expect, { k: 'execute' }>): void {
    const type = m[0]!;
    const portal = head.portal;
    switch (letter) {
      case 'D': {
        if (portal.plan === undefined) {
          // Described neither by the client nor by us (masking switched on mid-batch): decide on
          // lineage alone, without types — every column is taken as text-format.
          return this.fatal('a row arrived for a portal the gateway has not described');
        }
        return this.out(portal.plan ? rewriteDataRow(m, portal.plan) : m, type);
      }
      case 'H':
        return this.onCopyOut(portal.stmt, m, type);
      case 'd':
        return this.out(this.copyData(m), type);
      case 'G':
        this.logCopyIn(portal.stmt, m);
        return this.out(m, type);
      case 'c':
        return this.out(m, type);
      case 'C':
      case 's':
      case 'I':
        this.log.copyDone();
        this.plan = portal.plan ?? null;
        this.finishResult(portal.stmt, letter === 'C');
        this.queue.shift();
        return this.out(m, type);
    }
    this.fatal(`target message '${letter}' does not match the outstanding Execute`);
  }

  private logCopyIn(stmt: Stmt | undefined, m: Buffer): void {
    if (this.o.mask.mask_before_log && this.active) this.log.copyIn(stmt?.tree(), stmt?.text, m[5] === 1);
  }

  private onError(m: Buffer, head: Expect): void {
    this.log.copyDone();
    const stmt = head.k === 'query' ? head.stmts[head.i] : head.k === 'parse' ? head.stmt : head.k === 'describeS' ? head.stmt : head.k === 'describeP' || head.k === 'execute' ? head.portal.stmt : undefined;
    const out = this.scrub(m, stmt);
    this.finishResult(stmt, false);
    if (head.k === 'query') {
      head.failed = true;
      head.i = head.stmts.length;
      return this.out(out, m[0]!);
    }
    if (head.k === 'fcall' || head.k === 'sync') return this.out(out, m[0]!);
    // Extended protocol: the target skips to Sync; drop what it will not answer.
    const sync = this.queue.findIndex((e) => e.k === 'sync' || e.k === 'query' || e.k === 'fcall');
    if (sync < 0) {
      this.queue.length = 0;
      this.skipUntilSync = true;
    } else this.queue.splice(0, sync);
    this.out(out, m[0]!);
  }

  // ---- decisions ---------------------------------------------------------------------------

  private planFor(stmt: Stmt | undefined): MaskPlan {
    const analysis = stmt?.via ? mergeAnalyses(stmt.via.analysis, stmt.analysis) : stmt?.analysis;
    const d = evaluate(this.o.policy.current(), { identity: this.o.identity, target_id: this.o.target_id, now: new Date(), ...(analysis ? { statement: analysis } : {}) });
    return d.mask.length === 0 ? NO_MASK : this.o.mask.engine.plan(d.mask);
  }

  private refreshed = new WeakSet<Buffer>();

  /** The column plan for a RowDescription, null when nothing is masked, 'stalled' while the catalog loads. */
  private decide(stmt: Stmt | undefined, rowDesc: Buffer, type: number): ColumnPlan | null | 'stalled' {
    if (!this.active) return null;
    const mask = this.planFor(stmt);
    if (mask === NO_MASK) return null;
    const fields = parseRowDescription(rowDesc);
    const choices: (MaskChoice | undefined)[] = fields.map(() => undefined);
    const reasons: (string | undefined)[] = fields.map(() => undefined);
    if (mask.hasColumns) {
      const snap = this.o.catalog.current();
      const wantsRefresh = snap === undefined || fields.some((f) => f.tableOid >= FIRST_NORMAL_OBJECT_ID && snap.column(f.tableOid, f.attnum) === undefined);
      let lineage = snap && this.lineage(stmt, snap);
      if (!this.refreshed.has(rowDesc) && (wantsRefresh || (lineage && lineage.unknownRelations.length > 0))) {
        this.refreshed.add(rowDesc);
        this.stall(this.o.catalog.refresh(), type, rowDesc);
        return 'stalled';
      }
      const s = snap ?? this.o.catalog.last();
      lineage = s && this.lineage(stmt, s);
      const lins = lineageByColumn(lineage, fields.length);
      fields.forEach((f, i) => {
        let best: MaskChoice | undefined;
        let why: string | undefined;
        const consider = (c: MaskChoice | undefined, reason: string): void => {
          if (c !== undefined && (best === undefined || stronger(c, best))) {
            best = c;
            why = reason;
          }
        };
        if (f.tableOid !== 0) {
          const origin = s?.column(f.tableOid, f.attnum);
          if (origin !== undefined) consider(mask.column(origin), origin);
          else if (f.tableOid >= FIRST_NORMAL_OBJECT_ID) consider(mask.strongestColumn, 'undecidable');
        }
        const lin = lins[i];
        if (lin === undefined || lin.opaque) consider(mask.strongestColumn, 'undecidable');
        else for (const src of lin.sources) consider(mask.column(src), src);
        choices[i] = best;
        reasons[i] = why;
      });
    }
    if (!mask.hasDetectors && choices.every((c) => c === undefined)) return null;
    return { fields, choices, reasons, mask, encoding: this.encoding, counts: fields.map(() => 0), hits: new Map(), rows: 0 };
  }

  private lineage(stmt: Stmt | undefined, snap: CatalogSnapshot): Lineage | undefined {
    const source = stmt?.via ?? stmt;
    const tree = source?.tree();
    if (!tree) return undefined;
    return cachedLineage(tree, snap);
  }

  private onCopyOut(stmt: Stmt | undefined, m: Buffer, type: number): void {
    this.copy = undefined;
    this.plan = null;
    const mask = this.planFor(stmt);
    if (this.active && mask !== NO_MASK) {
      const n = m.readInt16BE(6);
      const tree = stmt?.tree();
      const copyStmt = tree?.CopyStmt as Obj | undefined;
      const format = copyFormat(Array.isArray(copyStmt?.options) ? copyStmt.options : []);
      if (m[5] === 1) format.kind = 'binary';
      const snap = this.o.catalog.current() ?? this.o.catalog.last();
      if (mask.hasColumns && snap === undefined && !this.refreshed.has(m)) {
        this.refreshed.add(m);
        this.stall(this.o.catalog.refresh(), type, m);
        return;
      }
      const lins = lineageByColumn(snap && this.lineage(stmt, snap), n);
      const choices: (MaskChoice | undefined)[] = [];
      const reasons: (string | undefined)[] = [];
      for (let i = 0; i < n; i++) {
        let best: MaskChoice | undefined;
        let why: string | undefined;
        const lin = lins[i];
        if (mask.hasColumns) {
          if (lin === undefined || lin.opaque) [best, why] = [mask.strongestColumn, 'undecidable'];
          else
            for (const src of lin.sources) {
              const c = mask.column(src);
              if (c !== undefined && (best === undefined || stronger(c, best))) [best, why] = [c, src];
            }
        }
        choices.push(best);
        reasons.push(why);
      }
      const fields = choices.map((_, i) => ({ name: `column${i + 1}`, tableOid: 0, attnum: 0, typeOid: 0, format: 0 }));
      this.plan = { fields, choices, reasons, mask, encoding: this.encoding, counts: fields.map(() => 0), hits: new Map(), rows: 0 };
      this.copy = { format, pendingHeader: true };
    }
    this.out(m, type);
  }

  private copyData(m: Buffer): Buffer {
    if (!this.plan || !this.copy) return m;
    const payload = m.subarray(5);
    const out = rewriteCopyData(payload, this.plan, this.copy);
    if (out === payload) return m;
    const head = Buffer.alloc(5);
    head[0] = 0x64;
    head.writeUInt32BE(4 + out.length, 1);
    return Buffer.concat([head, out]);
  }

  /** Report what the finished result masked (mask.applied), then forget its plan. */
  private finishResult(stmt: Stmt | undefined, completed: boolean): void {
    const plan = this.plan;
    this.plan = null;
    this.copy = undefined;
    if (!plan) return;
    if (completed && stmt && stmt.analysis.features.includes('ddl')) this.o.onDdl();
    const columns = plan.choices.flatMap((c, i) =>
      c === undefined ? [] : [{ index: i, name: plan.fields[i]?.name ?? '', source: plan.reasons[i] ?? 'undecidable', strategy: c.strategy, rule_id: c.rule_id, count: plan.counts[i] ?? 0 }],
    );
    const detectors = [...plan.hits].map(([detector, count]) => ({ detector, count, strategy: strategyOf(plan.mask, detector), rule_id: ruleOf(plan.mask, detector) }));
    if (columns.length === 0 && detectors.length === 0) return;
    this.o.onApplied({
      protocol_kind: stmt?.kind ?? 'simple',
      statement_kind: stmt?.analysis.kind ?? 'unknown',
      rows: plan.rows,
      rule_ids: [...plan.mask.ruleIds],
      columns,
      detectors,
    });
  }

  // ---- errors, notices, notifications -----------------------------------------------------

  private scrub(m: Buffer, stmt: Stmt | undefined): Buffer {
    if (!this.active) return m;
    const mask = this.planFor(stmt);
    if (mask === NO_MASK) return m;
    let tainted = false;
    if (mask.hasColumns) {
      const snap = this.o.catalog.last();
      const lineage = snap && this.lineage(stmt, snap);
      if (!lineage) tainted = true;
      else {
        const all: Lin[] = [lineage.reads, lineage.written, ...lineage.outputs];
        tainted = all.some((l) => l.opaque || [...l.sources].some((s) => mask.column(s) !== undefined));
      }
    }
    const hits = new Map<Detector, number>();
    const out = scrubError(m, mask, tainted, hits);
    if (hits.size > 0 || out !== m) {
      this.o.onApplied({
        protocol_kind: stmt?.kind ?? 'simple',
        statement_kind: stmt?.analysis.kind ?? 'unknown',
        rows: 0,
        rule_ids: [...mask.ruleIds],
        columns: [],
        detectors: [...hits].map(([detector, count]) => ({ detector, count, strategy: strategyOf(mask, detector), rule_id: ruleOf(mask, detector) })),
        ...(out !== m ? { message_scrubbed: true } : {}),
      });
    }
    return out;
  }

  private scrubNotice(m: Buffer, head: Expect | undefined): Buffer {
    const stmt = head?.k === 'query' ? head.stmts[head.i] : head?.k === 'execute' ? head.portal.stmt : undefined;
    return this.scrub(m, stmt);
  }

  /** NotificationResponse payloads (NOTIFY/pg_notify) can carry anything: detectors only. */
  private scrubNotification(m: Buffer): Buffer {
    if (!this.active) return m;
    const mask = this.planFor(undefined);
    if (!mask.hasDetectors) return m;
    const ch = cstr(m, 9);
    const payload = ch && cstr(m, ch.end + 1);
    if (!ch || !payload) return m;
    const r = mask.scan(payload.text);
    if (!r) return m;
    const body = Buffer.concat([m.subarray(5, ch.end + 1), Buffer.from(`${r.text ?? '[REDACTED]'}\0`, 'utf8')]);
    const head = Buffer.alloc(5);
    head[0] = 0x41;
    head.writeUInt32BE(4 + body.length, 1);
    return Buffer.concat([head, body]);
  }

  // ---- the event log (mask_before_log) -------------------------------------------------------

  /**
   * With mask_before_log, what the event log records for a client message (mask-log.ts): statement
   * literals that meet masked columns, Bind parameters by column, COPY FROM data, and every
   * detector. Otherwise, and for other messages, the message itself.
   */
  forLog(type: number, message: Buffer): Buffer | [number, Buffer][] {
    if (!this.o.mask.mask_before_log || !this.active) return message;
    try {
      return this.log.message(type, message);
    } catch {
      // A message this code cannot take apart was refused by the target anyway; record it hidden.
      return typedMessage(type, Buffer.alloc(0));
    }
  }

  /** With mask_before_log, a statement as `policy.blocked` / `approval.requested` record it. */
  statementForLog(text: string): string {
    if (!this.o.mask.mask_before_log || !this.active) return text;
    return this.log.statement(text);
  }

  // ---- laundering ---------------------------------------------------------------------------

  /**
   * Whether a statement would store values derived from a masked column (see header). Decided on
   * the last catalog snapshot, without waiting: with no snapshot yet, a write that reads any
   * relation is refused while column rules apply (the message says to retry).
   */
  writeVeto(a: SqlAnalysis): string | undefined {
    if (!a.features.includes('write') && a.kind !== 'SelectStmt') return undefined;
    if (!this.active) return undefined;
    const d = evaluate(this.o.policy.current(), { identity: this.o.identity, target_id: this.o.target_id, now: new Date(), statement: a });
    if (d.mask.length === 0) return undefined;
    const mask = this.o.mask.engine.plan(d.mask);
    if (!mask.hasColumns) return undefined;
    const tree = parseAll(a.text)?.[0];
    if (!tree) return undefined; // unparsable: the enforcer decides
    const snap = this.o.catalog.last();
    if (snap === undefined) {
      if (this.o.catalog.current() === undefined) void this.o.catalog.refresh().catch(() => {});
      return a.relations.length > 0 && a.kind !== 'SelectStmt' ? 'the gateway has not loaded the target catalog yet, so it cannot tell whether this write copies masked columns; retry in a moment' : undefined;
    }
    const l = cachedLineage(tree, snap);
    const w = l.written;
    if (w.sources.size === 0 && !w.opaque) return undefined;
    const masked = [...w.sources].find((s) => mask.column(s) !== undefined);
    if (masked !== undefined) return `the statement would store values derived from the masked column ${masked}`;
    if (w.opaque) return 'the statement would store values whose origin the gateway cannot decide while masking rules apply';
    return undefined;
  }
}

function typedMessage(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

function lineageByColumn(l: Lineage | undefined, n: number): (Lin | undefined)[] {
  if (l === undefined) return new Array<Lin | undefined>(n).fill(undefined);
  if (l.shapeKnown && l.outputs.length === n) return [...l.outputs];
  // Positions unreliable: every column may derive from anything the statement reads.
  const all = new Set<string>();
  let opaque = !l.shapeKnown;
  for (const x of [...l.outputs, l.reads]) {
    for (const s of x.sources) all.add(s);
    if (x.opaque) opaque = true;
  }
  const lin: Lin = { sources: all, opaque };
  return new Array<Lin>(n).fill(lin);
}

function mergeAnalyses(a: SqlAnalysis, b: SqlAnalysis): SqlAnalysis {
  return { ...b, relations: [...new Set([...a.relations, ...b.relations])], functions: [...new Set([...a.functions, ...b.functions])], features: [...new Set([...a.features, ...b.features])] };
}

function strategyOf(mask: MaskPlan, d: Detector): MaskApplied['detectors'][number]['strategy'] {
  return mask.detectorChoice(d)?.strategy ?? 'redact';
}
function ruleOf(mask: MaskPlan, d: Detector): string {
  return mask.detectorChoice(d)?.rule_id ?? '';
}
