/**
 * Column lineage from PostgreSQL's parse tree (libpg-query): for each output column of a
 * statement, the source columns (`schema.table.column`) its value derives from. Pure: relations
 * are looked up through a `CatalogLookup` (catalog.ts serves it from a per-target snapshot).
 *
 * Derivation is taint: a value derives from every column referenced anywhere in its expression —
 * through aliases, casts, operators (`||`), functions and aggregates, CASE/COALESCE, scalar and
 * ARRAY subqueries (their output column), CTEs and derived tables, views (their definitions, parsed
 * and followed recursively, and the view's own column names), UNION/INTERSECT/EXCEPT (by position),
 * joins (USING merges), `*` and `t.*` expansion, whole-row references (`t`, `row_to_json(t)`,
 * `to_jsonb(t)`, `json_agg(t)`), row and array constructors and string_agg/array_agg. Over-approx-
 * imation is deliberate: `count(ssn)` counts as derived from ssn.
 *
 * Undecidable parts make a column `opaque` (the caller masks it with the strongest column rule):
 * a function that is not a pg_catalog builtin (its body is invisible), a builtin that reads tables
 * or runs SQL given as a string (table_to_xml, query_to_xml, dblink, …), a relation the catalog
 * does not know, statistics views that hold sample values (pg_stats, pg_statistic…), SQL EXECUTE
 * of a statement prepared with SQL PREPARE, CALL. When `*` expands over something whose columns are
 * unknown the output positions are lost: `shapeKnown` is false and the caller treats every output
 * column as derived from everything the statement reads.
 *
 * `written` is what a statement stores: INSERT … SELECT/VALUES values, UPDATE … SET expressions,
 * MERGE actions, CREATE TABLE AS / SELECT INTO outputs. The gateway refuses writes that would copy
 * a masked column somewhere unmasked (mask-stream.ts, "laundering").
 *
 * Literal sites (optional `LiteralSink`, used to mask statements before they are stored: see
 * literals.ts): a subtree whose constants and parameters meet a column is reported with that
 * column's lineage — a comparison or other operator (`ssn = 'x'`, `ssn IN (…)`, `ssn LIKE …`), a
 * function call's arguments (`strpos(ssn, 'x')`), CASE/COALESCE/NULLIF/GREATEST, `x IN (SELECT …)`;
 * and what a write assigns to a column: INSERT values by target position, UPDATE/ON CONFLICT SET,
 * MERGE actions. The sink decides what to mask; this module only says which column a literal meets.
 */
import { isBuiltinFunction, isDangerousFunction } from '../sql/functions.ts';

type Obj = Record<string, unknown>;

export interface RelationInfo {
  readonly schema: string;
  readonly name: string;
  /** r table, v view, m materialised view, f foreign table, p partitioned table. */
  readonly kind: string;
  /** Column names in attribute order (dropped columns left out). */
  readonly columns: readonly string[];
  /** The parsed definition of a view or materialised view (a SelectStmt node), if any. */
  viewQuery(): Obj | undefined;
  /** pg_catalog / information_schema: no view recursion, never masked (except the leaky ones). */
  readonly system: boolean;
  /**
   * `columns` lists only some of the relation's columns (ingest knows no catalog, only the columns
   * its mask rules name): a reference to another column derives from nothing, and positions
   * (`*`, INSERT without a column list) are unknown.
   */
  readonly partial?: boolean;
  /** With `partial`: a rule names columns by a glob, so a column not listed may still be covered (opaque). */
  readonly unlistedOpaque?: boolean;
}

/** Receives a subtree whose constants and parameters meet values of lineage `lin` (see header). */
export type LiteralSink = (node: unknown, lin: Lin) => void;

export interface CatalogLookup {
  /** Relations named `name`: in `schema`, or in any schema when `schema` is undefined. [] when none. */
  relations(schema: string | undefined, name: string): readonly RelationInfo[];
}

/** What one value derives from. */
export interface Lin {
  readonly sources: ReadonlySet<string>;
  /** Derived from something the gateway cannot see through. */
  readonly opaque: boolean;
}

export interface Lineage {
  readonly outputs: readonly Lin[];
  /** Output column names (for derived tables); positions match `outputs`. */
  readonly names: readonly string[];
  /** False when `*` expanded over unknown columns: positions of `outputs` are not reliable. */
  readonly shapeKnown: boolean;
  /** Everything read anywhere in the statement (WHERE, JOIN, GROUP BY…): errors may echo it. */
  readonly reads: Lin;
  /** What the statement stores into a relation. */
  readonly written: Lin;
  /** Relations referenced that the catalog does not know (the caller may refresh and retry). */
  readonly unknownRelations: readonly string[];
}

const EMPTY: Lin = Object.freeze({ sources: new Set<string>(), opaque: false });
const OPAQUE: Lin = Object.freeze({ sources: new Set<string>(), opaque: true });

/** Statistics and sample-holding system relations: their values come from user columns. */
const LEAKY_SYSTEM = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic', 'pg_statistic_ext', 'pg_statistic_ext_data']);
/** Builtins that read relations or run SQL named in a string: the parse tree cannot see what. */
const OPAQUE_BUILTINS = new Set([
  'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema', 'cursor_to_xml', 'cursor_to_xmlschema',
  'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema', 'database_to_xml', 'database_to_xmlschema',
  'database_to_xml_and_xmlschema', 'lo_get', 'loread', 'pg_read_file', 'pg_read_binary_file',
]);
const MAX_DEPTH = 200;
const MAX_VIEW_DEPTH = 16;

class Acc {
  sources = new Set<string>();
  opaque = false;
  add(l: Lin): void {
    for (const s of l.sources) this.sources.add(s);
    if (l.opaque) this.opaque = true;
  }
  lin(): Lin {
    return this.sources.size === 0 && !this.opaque ? EMPTY : { sources: this.sources, opaque: this.opaque };
  }
}

function union(...ls: Lin[]): Lin {
  const a = new Acc();
  for (const l of ls) a.add(l);
  return a.lin();
}

interface Column {
  readonly name: string;
  readonly lin: Lin;
}

/** One FROM item as seen by column references. */
interface RangeItem {
  /** Lower-cased alias or relation name; '' for an unaliased join. */
  readonly alias: string;
  readonly columns: readonly Column[];
  /** Columns not known (unknown relation, function without column list): references resolve to `fallback`. */
  readonly open: boolean;
  readonly fallback: Lin;
}

interface Scope {
  readonly items: RangeItem[];
  readonly parent: Scope | undefined;
  readonly ctes: Map<string, Lineage>;
}

const str = (n: unknown): string | undefined => ((n as { String?: { sval?: string } })?.String?.sval);
const nodeOf = (n: unknown): [string, Obj] | undefined => {
  if (n === null || typeof n !== 'object' || Array.isArray(n)) return undefined;
  const keys = Object.keys(n);
  return keys.length === 1 ? [keys[0]!, (n as Obj)[keys[0]!] as Obj] : undefined;
};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** Statement `relation` fields hold a bare RangeVar (no node wrapper). */
const rangeVar = (r: unknown): unknown => (r && typeof r === 'object' && 'relname' in r ? { RangeVar: r } : r);

export class LineageBuilder {
  private readonly unknown = new Set<string>();
  private readonly reads = new Acc();
  private readonly written = new Acc();
  private viewDepth = 0;
  private readonly viewCache = new Map<RelationInfo, Lineage>();

  constructor(
    private readonly catalog: CatalogLookup,
    private readonly sink?: LiteralSink,
  ) {}

  /** Report `node`'s literals as meeting `lin` (when someone listens and `lin` derives from something). */
  private site(node: unknown, lin: Lin): void {
    if (this.sink !== undefined && node != null && (lin.sources.size > 0 || lin.opaque)) this.sink(node, lin);
  }

  /** Lineage of one top-level statement node (`{ SelectStmt: … }`). */
  statement(stmt: Obj): Lineage {
    const n = nodeOf(stmt);
    const finish = (out: Pick<Lineage, 'outputs' | 'names' | 'shapeKnown'>): Lineage => ({
      ...out,
      reads: this.reads.lin(),
      written: this.written.lin(),
      unknownRelations: [...this.unknown],
    });
    const none = { outputs: [], names: [], shapeKnown: true };
    if (n === undefined) return finish(none);
    const [kind, body] = n;
    const root: Scope = { items: [], parent: undefined, ctes: new Map() };
    switch (kind) {
      case 'SelectStmt': {
        const q = this.select(body, root, 0);
        if (body.intoClause) this.written.add(union(...q.outputs, q.shapeKnown ? EMPTY : this.reads.lin()));
        return finish(q);
      }
      case 'InsertStmt': {
        this.withClause(body.withClause, root, 0);
        if (body.selectStmt) {
          const q = this.select(nodeOf(body.selectStmt)![1], root, 0);
          this.written.add(union(...q.outputs, q.shapeKnown ? EMPTY : this.reads.lin()));
        }
        if (this.sink) this.insertSites(body, root);
        return finish(this.returning(body, root));
      }
      case 'UpdateStmt': {
        this.withClause(body.withClause, root, 0);
        const scope = this.fromScope(root, [rangeVar(body.relation), ...list(body.fromClause)], 0);
        const rel = body.relation as Obj | undefined;
        const qualifier = ((rel?.alias as Obj | undefined)?.aliasname ?? rel?.relname) as string | undefined;
        for (const t of list(body.targetList)) {
          const target = nodeOf(t)?.[1] as Obj | undefined;
          const value = this.expr(target?.val, scope, 0);
          // `SET col = col + 1`: a value derived only from the column it is stored back into is not a
          // copy (whoever may read the destination may read the source: it is the same column), so it
          // is read, not written elsewhere. Anything else derived from a masked column is a copy.
          if (qualifier !== undefined && typeof target?.name === 'string' && target.indirection === undefined && value.sources.size > 0 && !value.opaque) {
            const dest = this.expr({ ColumnRef: { fields: [{ String: { sval: qualifier } }, { String: { sval: target.name } }] } }, scope, 0);
            if (!dest.opaque && [...value.sources].every((src) => dest.sources.has(src))) {
              this.reads.add(value);
              continue;
            }
          }
          this.written.add(value);
        }
        this.reads.add(this.expr(body.whereClause, scope, 0));
        if (this.sink) this.assignSites(list(body.targetList), scope.items[0]);
        return finish(this.returning(body, root, scope));
      }
      case 'DeleteStmt': {
        this.withClause(body.withClause, root, 0);
        const scope = this.fromScope(root, [rangeVar(body.relation), ...list(body.usingClause)], 0);
        this.reads.add(this.expr(body.whereClause, scope, 0));
        return finish(this.returning(body, root, scope));
      }
      case 'MergeStmt': {
        this.withClause(body.withClause, root, 0);
        const scope = this.fromScope(root, [rangeVar(body.relation), body.sourceRelation], 0);
        this.reads.add(this.expr(body.joinCondition, scope, 0));
        for (const w of list(body.mergeWhenClauses)) {
          const clause = nodeOf(w)?.[1] ?? {};
          for (const t of list(clause.targetList)) this.written.add(this.expr((nodeOf(t)?.[1] as Obj)?.val, scope, 0));
          for (const v of list(clause.values)) this.written.add(this.expr(v, scope, 0));
          this.reads.add(this.expr(clause.condition, scope, 0));
          if (this.sink) {
            if (clause.commandType === 'CMD_INSERT') this.positionalSites(list(clause.targetList), list(clause.values), scope.items[0]);
            else this.assignSites(list(clause.targetList), scope.items[0]);
          }
        }
        return finish(this.returning(body, root, scope));
      }
      case 'CreateTableAsStmt': {
        const q = this.select(nodeOf(body.query)?.[1] ?? {}, root, 0, nodeOf(body.query)?.[0]);
        this.written.add(union(...q.outputs, q.shapeKnown ? EMPTY : this.reads.lin()));
        return finish(none);
      }
      case 'DeclareCursorStmt':
        return finish(this.select(nodeOf(body.query)?.[1] ?? {}, root, 0));
      case 'CopyStmt': {
        if (body.query) {
          const [qk, qb] = nodeOf(body.query)!;
          if (qk === 'SelectStmt') return finish(this.select(qb, root, 0));
          return finish(this.statementInner(qk, qb)); // COPY (INSERT … RETURNING) TO STDOUT
        }
        if (body.is_from) return finish(none);
        const scope = this.fromScope(root, [rangeVar(body.relation)], 0);
        const item = scope.items[0]!;
        const wanted = list(body.attlist).map(str).filter((s): s is string => s !== undefined);
        if (wanted.length === 0) return finish({ outputs: item.columns.map((c) => c.lin), names: item.columns.map((c) => c.name), shapeKnown: !item.open });
        return finish({ outputs: wanted.map((w) => this.columnOf(item, w)), names: wanted, shapeKnown: true });
      }
      case 'ExecuteStmt':
      case 'CallStmt':
        // SQL EXECUTE of a SQL PREPARE, a procedure's OUT parameters: not visible here.
        this.reads.add(OPAQUE);
        return finish({ outputs: [], names: [], shapeKnown: false });
      case 'ExplainStmt': {
        // EXPLAIN prints plans, not values; EXPLAIN ANALYZE of a write still writes.
        const inner = nodeOf(body.query);
        if (inner) this.statementInner(inner[0], inner[1]);
        return finish(none);
      }
      default:
        return finish(none);
    }
  }

  // ---- literal sites ---------------------------------------------------------------------------

  /** INSERT: VALUES rows or a plain SELECT's targets by target position; ON CONFLICT DO UPDATE SET. */
  private insertSites(body: Obj, root: Scope): void {
    const target = this.fromScope(root, [rangeVar(body.relation)], 0).items[0];
    const sel = nodeOf(body.selectStmt)?.[1];
    if (sel) {
      const rows = sel.valuesLists
        ? list(sel.valuesLists).map((r) => list((r as { List?: { items?: unknown[] } }).List?.items))
        : sel.op && sel.op !== 'SETOP_NONE'
          ? []
          : [list(sel.targetList).map((t) => (nodeOf(t)?.[1] as Obj | undefined)?.val)];
      for (const row of rows) this.positionalSites(list(body.cols), row, target);
      // Set operations and anything else: every constant may land in any column.
      if (rows.length === 0 && target) this.site(sel, this.wholeRow(target));
    }
    const conflict = body.onConflictClause as Obj | undefined;
    if (conflict) this.assignSites(list(conflict.targetList), target);
  }

  /** Values stored by position into `cols` (ResTargets naming columns) or, without them, the relation's column order. */
  private positionalSites(cols: unknown[], values: unknown[], target: RangeItem | undefined): void {
    if (!target) return;
    const names = cols.map((c) => (nodeOf(c)?.[1] as Obj | undefined)?.name as string | undefined);
    values.forEach((v, i) => {
      const name = names.length > 0 ? names[i] : target.open ? undefined : target.columns[i]?.name;
      this.site(v, name === undefined ? this.wholeRow(target) : this.columnOf(target, name));
    });
  }

  /** `SET col = expr` (UPDATE, ON CONFLICT, MERGE): the expression's literals meet `col`. */
  private assignSites(targetList: unknown[], target: RangeItem | undefined): void {
    if (!target) return;
    for (const t of targetList) {
      const rt = nodeOf(t)?.[1] as Obj | undefined;
      if (typeof rt?.name === 'string') this.site(rt.val, this.columnOf(target, rt.name));
    }
  }

  private statementInner(kind: string, body: Obj): Lineage {
    return this.statement({ [kind]: body });
  }

  private returning(body: Obj, root: Scope, scope?: Scope): Pick<Lineage, 'outputs' | 'names' | 'shapeKnown'> {
    const rl = list(body.returningList ?? (body.returningClause as Obj | undefined)?.exprs);
    if (rl.length === 0) return { outputs: [], names: [], shapeKnown: true };
    return this.targets(rl, scope ?? this.fromScope(root, [rangeVar(body.relation)], 0), 0);
  }

  private withClause(w: unknown, scope: Scope, depth: number): void {
    const ctes = list((w as Obj | undefined)?.ctes);
    for (const c of ctes) {
      const cte = nodeOf(c)?.[1];
      if (!cte) continue;
      const name = String(cte.ctename).toLowerCase();
      const q = nodeOf(cte.ctequery);
      if (!q) continue;
      let lin: Lineage;
      if (q[0] === 'SelectStmt') {
        // Recursive CTEs reference themselves: seed with the non-recursive arm, then the whole.
        if (q[1].larg) scope.ctes.set(name, this.select(q[1].larg as Obj, scope, depth + 1));
        lin = this.select(q[1], scope, depth + 1);
      } else {
        // Data-modifying CTE: its RETURNING is what readers of the CTE see.
        lin = new LineageBuilder(this.catalog).statementShared(q[0], q[1], this);
      }
      const alias = list(cte.aliascolnames).map(str).filter((s): s is string => s !== undefined);
      scope.ctes.set(name, alias.length > 0 ? { ...lin, names: lin.names.map((n, i) => alias[i] ?? n) } : lin);
    }
  }

  /** A nested statement whose reads/writes count for the outer one. */
  private statementShared(kind: string, body: Obj, outer: LineageBuilder): Lineage {
    const l = this.statement({ [kind]: body });
    outer.reads.add(l.reads);
    outer.written.add(l.written);
    for (const u of l.unknownRelations) outer.unknown.add(u);
    return l;
  }

  // ---- SELECT ------------------------------------------------------------------------------

  private select(s: Obj, parent: Scope, depth: number, kind = 'SelectStmt'): Lineage {
    const base = { reads: EMPTY, written: EMPTY, unknownRelations: [] };
    if (kind !== 'SelectStmt' || depth > MAX_DEPTH) {
      this.reads.add(OPAQUE);
      return { outputs: [], names: [], shapeKnown: false, ...base };
    }
    const scope: Scope = { items: [], parent, ctes: new Map() };
    this.withClause(s.withClause, scope, depth);
    if (s.op && s.op !== 'SETOP_NONE') {
      const l = this.select(s.larg as Obj, scope, depth + 1);
      const r = this.select(s.rarg as Obj, scope, depth + 1);
      const n = Math.max(l.outputs.length, r.outputs.length);
      const outputs: Lin[] = [];
      for (let i = 0; i < n; i++) outputs.push(union(l.outputs[i] ?? EMPTY, r.outputs[i] ?? EMPTY));
      return { outputs, names: l.names, shapeKnown: l.shapeKnown && r.shapeKnown, ...base };
    }
    if (s.valuesLists) {
      const rows = list(s.valuesLists).map((r) => list((r as { List?: { items?: unknown[] } }).List?.items));
      const n = Math.max(0, ...rows.map((r) => r.length));
      const outputs: Lin[] = [];
      for (let i = 0; i < n; i++) outputs.push(union(...rows.map((r) => this.expr(r[i], scope, depth + 1))));
      return { outputs, names: outputs.map((_, i) => `column${i + 1}`), shapeKnown: true, ...base };
    }
    this.fromInto(scope, list(s.fromClause), depth);
    for (const k of ['whereClause', 'havingClause'] as const) this.reads.add(this.expr(s[k], scope, depth + 1));
    for (const g of list(s.groupClause)) this.reads.add(this.expr(g, scope, depth + 1));
    for (const o of list(s.sortClause)) this.reads.add(this.expr(o, scope, depth + 1));
    for (const d of list(s.distinctClause)) this.reads.add(this.expr(d, scope, depth + 1));
    return { ...this.targets(list(s.targetList), scope, depth), ...base };
  }

  private targets(targetList: unknown[], scope: Scope, depth: number): Pick<Lineage, 'outputs' | 'names' | 'shapeKnown'> {
    const outputs: Lin[] = [];
    const names: string[] = [];
    let shapeKnown = true;
    for (const t of targetList) {
      const rt = nodeOf(t)?.[1] ?? {};
      const val = rt.val;
      const ref = nodeOf(val);
      const fields = ref?.[0] === 'ColumnRef' ? list(ref[1].fields) : [];
      if (fields.length > 0 && nodeOf(fields[fields.length - 1])?.[0] === 'A_Star') {
        const qualifier = fields.slice(0, -1).map(str);
        const items = qualifier.length === 0 ? scope.items : this.findItems(scope, qualifier as string[]);
        if (items.length === 0) shapeKnown = false;
        for (const item of items) {
          if (item.open) shapeKnown = false;
          for (const c of item.columns) {
            outputs.push(c.lin);
            names.push(c.name);
            this.reads.add(c.lin);
          }
        }
        continue;
      }
      const lin = this.expr(val, scope, depth + 1);
      this.reads.add(lin);
      outputs.push(lin);
      names.push(typeof rt.name === 'string' ? rt.name : figureName(val));
    }
    return { outputs, names, shapeKnown };
  }

  // ---- FROM --------------------------------------------------------------------------------

  private fromScope(parent: Scope, from: unknown[], depth: number): Scope {
    const scope: Scope = { items: [], parent, ctes: new Map() };
    this.fromInto(scope, from, depth);
    return scope;
  }

  private fromInto(scope: Scope, from: unknown[], depth: number): void {
    for (const f of from) scope.items.push(...this.rangeItems(f, scope, depth + 1));
  }

  private rangeItems(node: unknown, scope: Scope, depth: number): RangeItem[] {
    const n = nodeOf(node);
    if (!n) return [];
    const [kind, b] = n;
    const aliasOf = (fallback: string): string => String((b.alias as Obj | undefined)?.aliasname ?? fallback).toLowerCase();
    const renamed = (cols: Column[]): Column[] => {
      const names = list((b.alias as Obj | undefined)?.colnames).map(str);
      return cols.map((c, i) => (names[i] ? { name: names[i]!, lin: c.lin } : c));
    };
    switch (kind) {
      case 'RangeVar':
        return [this.relationItem(b, scope, aliasOf(String(b.relname)))];
      case 'RangeSubselect': {
        const q = nodeOf(b.subquery);
        const lin = q ? this.select(q[1], scope, depth + 1, q[0]) : undefined;
        if (!lin) return [{ alias: aliasOf(''), columns: [], open: true, fallback: OPAQUE }];
        const cols = renamed(lin.outputs.map((l, i) => ({ name: lin.names[i] ?? `?column?`, lin: l })));
        return [{ alias: aliasOf(''), columns: cols, open: !lin.shapeKnown, fallback: lin.shapeKnown ? EMPTY : this.reads.lin() }];
      }
      case 'JoinExpr': {
        const items = [...this.rangeItems(b.larg, scope, depth + 1), ...this.rangeItems(b.rarg, scope, depth + 1)];
        const joined: Scope = { items, parent: scope, ctes: new Map() };
        this.reads.add(this.expr(b.quals, joined, depth + 1));
        if (b.alias) {
          const cols = renamed(items.flatMap((i) => i.columns));
          return [{ alias: aliasOf(''), columns: cols, open: items.some((i) => i.open), fallback: union(...items.map((i) => i.fallback)) }];
        }
        return items;
      }
      case 'RangeFunction':
      case 'RangeTableFunc':
      case 'JsonTable':
      case 'RangeTableSample': {
        if (kind === 'RangeTableSample') return this.rangeItems(b.relation, scope, depth + 1).map((i) => ({ ...i, alias: b.alias ? aliasOf(i.alias) : i.alias }));
        // Set-returning functions: every output derives from every argument (and opaque if not builtin).
        const lin = this.expr(b, scope, depth + 1);
        this.reads.add(lin);
        const names = [
          ...list((b.alias as Obj | undefined)?.colnames).map(str),
          ...list(b.coldeflist).map((c) => (nodeOf(c)?.[1]?.colname as string | undefined)),
          ...list(b.columns).map((c) => (nodeOf(c)?.[1]?.colname as string | undefined)),
        ].filter((s): s is string => s !== undefined);
        return [{ alias: aliasOf(''), columns: names.map((name) => ({ name, lin })), open: true, fallback: lin }];
      }
      default:
        this.reads.add(OPAQUE);
        return [{ alias: '', columns: [], open: true, fallback: OPAQUE }];
    }
  }

  private relationItem(rv: Obj, scope: Scope, alias: string): RangeItem {
    const schema = typeof rv.schemaname === 'string' ? rv.schemaname : undefined;
    const name = String(rv.relname);
    if (schema === undefined) {
      for (let s: Scope | undefined = scope; s; s = s.parent) {
        const cte = s.ctes.get(name.toLowerCase());
        if (cte) return { alias, columns: cte.outputs.map((l, i) => ({ name: cte.names[i] ?? '?column?', lin: l })), open: !cte.shapeKnown, fallback: cte.shapeKnown ? EMPTY : OPAQUE };
      }
    }
    const rels = this.catalog.relations(schema, name);
    if (rels.length === 0) {
      this.unknown.add(schema ? `${schema}.${name}` : name);
      return { alias, columns: [], open: true, fallback: OPAQUE };
    }
    // An unqualified name may resolve in several schemas (search_path is the session's): union.
    const byName = new Map<string, Acc>();
    const order: string[] = [];
    let open = false;
    let partial = false;
    let unlisted = false;
    for (const rel of rels) {
      if (rel.partial) {
        partial = true;
        if (rel.unlistedOpaque) unlisted = true;
      }
      const cols = this.relationColumns(rel);
      if (cols === undefined) {
        open = true;
        continue;
      }
      for (const c of cols) {
        let a = byName.get(c.name);
        if (!a) {
          byName.set(c.name, (a = new Acc()));
          order.push(c.name);
        }
        a.add(c.lin);
      }
    }
    const columns = order.map((n) => ({ name: n, lin: byName.get(n)!.lin() }));
    // A partial relation (see RelationInfo): open, but a column it does not list derives from nothing.
    if (partial && !open) return { alias, columns, open: true, fallback: unlisted ? OPAQUE : EMPTY };
    return { alias, columns, open, fallback: open ? OPAQUE : EMPTY };
  }

  /** Columns of a relation with their lineage; undefined when undecidable. */
  private relationColumns(rel: RelationInfo): Column[] | undefined {
    const own = (c: string): string => `${rel.schema}.${rel.name}.${c}`.toLowerCase();
    if (rel.system) {
      if (LEAKY_SYSTEM.has(rel.name)) return rel.columns.map((c) => ({ name: c, lin: OPAQUE }));
      return rel.columns.map((c) => ({ name: c, lin: { sources: new Set([own(c)]), opaque: false } }));
    }
    if (rel.kind !== 'v' && rel.kind !== 'm') return rel.columns.map((c) => ({ name: c, lin: { sources: new Set([own(c)]), opaque: false } }));
    let view = this.viewCache.get(rel);
    if (view === undefined) {
      const q = rel.viewQuery();
      if (q === undefined || this.viewDepth >= MAX_VIEW_DEPTH) return rel.columns.map((c) => ({ name: c, lin: { sources: new Set([own(c)]), opaque: true } }));
      this.viewDepth++;
      try {
        view = this.select(q, { items: [], parent: undefined, ctes: new Map() }, 0);
      } finally {
        this.viewDepth--;
      }
      this.viewCache.set(rel, view);
    }
    const v = view;
    // A view's column i is its query's output i; the view's own name counts as a source too.
    return rel.columns.map((c, i) => ({ name: c, lin: union({ sources: new Set([own(c)]), opaque: false }, v.shapeKnown ? (v.outputs[i] ?? OPAQUE) : union(...v.outputs, OPAQUE)) }));
  }

  private findItems(scope: Scope, qualifier: string[]): RangeItem[] {
    const alias = qualifier[qualifier.length - 1]!.toLowerCase();
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const hit = s.items.filter((i) => i.alias === alias);
      if (hit.length > 0) return hit;
    }
    return [];
  }

  private columnOf(item: RangeItem, name: string): Lin {
    const c = item.columns.find((x) => x.name === name);
    return c ? c.lin : item.open ? item.fallback : EMPTY;
  }

  private wholeRow(item: RangeItem): Lin {
    return union(...item.columns.map((c) => c.lin), item.open ? item.fallback : EMPTY);
  }

  // ---- expressions -------------------------------------------------------------------------

  private columnRef(fields: unknown[], scope: Scope): Lin {
    const parts = fields.map((f) => str(f) ?? '*');
    if (parts.length === 1) {
      const name = parts[0]!;
      for (let s: Scope | undefined = scope; s; s = s.parent) {
        const hits = s.items.filter((i) => i.columns.some((c) => c.name === name));
        if (hits.length > 0) return union(...hits.map((i) => this.columnOf(i, name)));
        const row = s.items.filter((i) => i.alias === name.toLowerCase());
        if (row.length > 0) return union(...row.map((i) => this.wholeRow(i))); // whole-row reference
        const open = s.items.filter((i) => i.open);
        if (open.length > 0) return union(...open.map((i) => i.fallback));
      }
      return EMPTY; // a parameter-less name that is no column (e.g. current_date is not a ColumnRef); PostgreSQL would reject it
    }
    const col = parts[parts.length - 1]!;
    const items = this.findItems(scope, parts.slice(0, -1));
    if (items.length === 0) return OPAQUE;
    if (col === '*') return union(...items.map((i) => this.wholeRow(i)));
    return union(...items.map((i) => (i.columns.some((c) => c.name === col) ? this.columnOf(i, col) : i.open ? i.fallback : this.wholeRow(i))));
  }

  /** Lineage of any expression subtree. */
  private expr(node: unknown, scope: Scope, depth: number): Lin {
    if (node === null || node === undefined || typeof node !== 'object') return EMPTY;
    if (depth > MAX_DEPTH) return OPAQUE;
    if (Array.isArray(node)) return union(...node.map((x) => this.expr(x, scope, depth + 1)));
    const acc = new Acc();
    for (const [key, value] of Object.entries(node as Obj)) {
      switch (key) {
        case 'ColumnRef':
          acc.add(this.columnRef(list((value as Obj).fields), scope));
          break;
        case 'SubLink': {
          const sl = value as Obj;
          const test = this.expr(sl.testexpr, scope, depth + 1);
          acc.add(test);
          this.site(sl, test); // ssn IN (SELECT …): what the subquery yields is compared with ssn
          const q = nodeOf(sl.subselect);
          const inner = q ? this.select(q[1], scope, depth + 1, q[0]) : undefined;
          if (!inner) {
            acc.add(OPAQUE);
            break;
          }
          // EXISTS/ANY/ALL give a boolean; a scalar or ARRAY subquery gives its output's value.
          if (sl.subLinkType === 'EXPR_SUBLINK' || sl.subLinkType === 'ARRAY_SUBLINK' || sl.subLinkType === 'MULTIEXPR_SUBLINK') {
            acc.add(inner.shapeKnown ? union(...inner.outputs) : union(...inner.outputs, OPAQUE));
          }
          break;
        }
        case 'FuncCall': {
          const call = value as Obj;
          const parts = list(call.funcname).map(str).filter((s): s is string => s !== undefined);
          const name = parts[parts.length - 1] ?? '';
          if (!isBuiltinFunction(parts) || isDangerousFunction(parts) || OPAQUE_BUILTINS.has(name)) acc.add(OPAQUE);
          const args = this.expr(call.args, scope, depth + 1);
          acc.add(args);
          this.site(call.args, args); // strpos(ssn, 'x'): the arguments meet each other (not the function's opacity)
          acc.add(this.expr(call.agg_filter, scope, depth + 1));
          acc.add(this.expr(call.agg_order, scope, depth + 1));
          break;
        }
        case 'SelectStmt': {
          // A bare SelectStmt inside an expression (e.g. ARRAY(SELECT …) is a SubLink; this is a safety net).
          const inner = this.select(value as Obj, scope, depth + 1);
          acc.add(union(...inner.outputs, inner.shapeKnown ? EMPTY : OPAQUE));
          break;
        }
        case 'CaseExpr': {
          // CASE x WHEN 'v' …: each WHEN value is compared with x (results are only values; their
          // own comparisons are sites of their own).
          acc.add(this.expr(value, scope, depth + 1));
          const c = value as Obj;
          if (this.sink && c.arg) {
            const arg = this.expr(c.arg, scope, depth + 1);
            for (const w of list(c.args)) this.site((nodeOf(w)?.[1] as Obj | undefined)?.expr, arg);
          }
          break;
        }
        case 'A_Expr':
        case 'CoalesceExpr':
        case 'MinMaxExpr':
        case 'NullIfExpr':
        case 'A_ArrayExpr':
        case 'RowExpr': {
          // Operators and value choices: every constant in them meets every column in them.
          const l = this.expr(value, scope, depth + 1);
          acc.add(l);
          this.site(value, l);
          break;
        }
        case 'location':
        case 'A_Const':
        case 'TypeName':
        case 'typeName':
          break;
        default:
          if (value !== null && typeof value === 'object') acc.add(this.expr(value, scope, depth + 1));
      }
    }
    return acc.lin();
  }
}

/** PostgreSQL's FigureColname, roughly: the name a client sees for an unnamed target. */
function figureName(val: unknown): string {
  const n = nodeOf(val);
  if (!n) return '?column?';
  const [kind, b] = n;
  if (kind === 'ColumnRef') {
    const f = list(b.fields);
    return str(f[f.length - 1]) ?? '?column?';
  }
  if (kind === 'FuncCall') {
    const f = list(b.funcname);
    return str(f[f.length - 1]) ?? '?column?';
  }
  if (kind === 'TypeCast') return figureName(b.arg) === '?column?' ? (str(list((b.typeName as Obj)?.names).at(-1)) ?? '?column?') : figureName(b.arg);
  if (kind === 'A_Indirection') {
    const ind = list(b.indirection);
    return str(ind[ind.length - 1]) ?? figureName(b.arg);
  }
  return '?column?';
}

/** Convenience: lineage of one parsed statement. */
export function lineageOf(stmt: Obj, catalog: CatalogLookup): Lineage {
  return new LineageBuilder(catalog).statement(stmt);
}
