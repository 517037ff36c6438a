/**
 * From one statement's parse tree to policy features, relations and functions. Pure: no parser, no
 * I/O. The top-level node decides what kind of statement it is; a walk over the whole tree then finds
 * what hides inside it: writes in CTEs, dangerous calls in subqueries, defaults, views, PREPARE
 * bodies. The walk is iterative (an explicit stack) because the tree comes from untrusted input and
 * may be as deep as the parser allowed.
 */
import type { StatementFeature } from './features.ts';
import { isBuiltinFunction, isDangerousFunction, ROLE_SETTINGS } from './functions.ts';

type Obj = Record<string, unknown>;

export interface Derived {
  kind: string;
  features: StatementFeature[];
  relations: string[];
  functions: string[];
}

/** Top-level node types with a fixed set of features (the rest are found by name prefix below). */
const KIND_FEATURES: Record<string, readonly StatementFeature[]> = {
  SelectStmt: ['read'],
  VariableShowStmt: ['read'],
  InsertStmt: ['write'],
  UpdateStmt: ['write'],
  DeleteStmt: ['write'],
  MergeStmt: ['write'],
  RefreshMatViewStmt: ['write'],
  TruncateStmt: ['ddl', 'truncate'],
  CreateTableAsStmt: ['ddl', 'write'],
  IndexStmt: ['ddl'],
  ViewStmt: ['ddl'],
  DefineStmt: ['ddl'],
  CompositeTypeStmt: ['ddl'],
  RuleStmt: ['ddl'],
  CommentStmt: ['ddl'],
  SecLabelStmt: ['ddl'],
  ImportForeignSchemaStmt: ['ddl'],
  RenameStmt: ['ddl', 'alter'],
  ReassignOwnedStmt: ['ddl', 'alter'],
  GrantStmt: ['grant'],
  GrantRoleStmt: ['grant'],
  AlterDefaultPrivilegesStmt: ['grant', 'ddl', 'alter'],
  CreateRoleStmt: ['role_admin', 'ddl'],
  AlterRoleStmt: ['role_admin', 'ddl', 'alter'],
  AlterRoleSetStmt: ['role_admin', 'ddl', 'alter'],
  DropRoleStmt: ['role_admin', 'ddl', 'drop'],
  AlterSystemStmt: ['alter_system', 'alter'],
  DoStmt: ['do_block'],
  CallStmt: ['function_call'],
  TransactionStmt: ['transaction_control'],
  ConstraintsSetStmt: ['transaction_control'],
  PrepareStmt: ['prepared'],
  ExecuteStmt: ['prepared'],
  DeallocateStmt: ['prepared'],
  DeclareCursorStmt: ['cursor'],
  FetchStmt: ['cursor'],
  ClosePortalStmt: ['cursor'],
  ListenStmt: ['listen_notify'],
  NotifyStmt: ['listen_notify'],
  UnlistenStmt: ['listen_notify'],
  ExplainStmt: ['read'],
  // LOAD puts a shared library into the server process: as dangerous as any function on the list.
  LoadStmt: ['dangerous_function'],
  // VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, LOCK carry no feature: they neither read nor
  // change data or definitions. Policies can still match them by kind.
};

function kindFeatures(kind: string): readonly StatementFeature[] {
  const fixed = KIND_FEATURES[kind];
  if (fixed !== undefined) return fixed;
  if (kind.startsWith('Drop')) return ['ddl', 'drop']; // DropStmt, DropdbStmt, DropOwnedStmt, …
  if (kind.startsWith('Alter')) return ['ddl', 'alter']; // AlterTableStmt, AlterDatabaseStmt, …
  if (kind.startsWith('Create')) return ['ddl']; // CreateStmt, CreateFunctionStmt, CreatedbStmt, …
  return [];
}

/** Object types whose DROP names a relation (so DROP TABLE users lists 'users'). */
const RELATION_OBJECTS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE', 'OBJECT_SEQUENCE', 'OBJECT_INDEX']);

export function deriveStatement(stmt: Obj): Derived {
  const kind = Object.keys(stmt)[0] ?? 'unknown';
  const top = asObj(stmt[kind]) ?? {};
  const features = new Set<StatementFeature>(kindFeatures(kind));
  const relations = new Set<string>();
  const functions = new Set<string>();

  // Top-level specifics that depend on fields, not just on the node type.
  switch (kind) {
    case 'SelectStmt':
      if (top.intoClause !== undefined) features.add('ddl').add('write'); // SELECT … INTO new_table
      break;
    case 'VariableSetStmt':
      features.add(isRoleSetting(top) ? 'role_change' : 'session_setting');
      if (top.kind === 'VAR_RESET_ALL') features.add('role_change'); // RESET ALL also resets the role
      break;
    case 'DiscardStmt':
      features.add('session_setting');
      if (top.target === 'DISCARD_ALL') features.add('role_change'); // includes SET SESSION AUTHORIZATION DEFAULT
      break;
    case 'UpdateStmt':
    case 'DeleteStmt':
      onUpdateOrDelete(top, features); // nested ones are met by the walk, under their node key
      break;
    case 'MergeStmt':
      onMerge(top, features);
      break;
    case 'CopyStmt':
      copyFeatures(top, features);
      break;
    case 'RenameStmt':
      if (top.renameType === 'OBJECT_ROLE') features.add('role_admin');
      break;
    case 'DropStmt':
      if (typeof top.removeType === 'string' && RELATION_OBJECTS.has(top.removeType)) {
        for (const o of asArray(top.objects)) {
          const name = nameOf(asArray(asObj(asObj(o)?.List)?.items));
          if (name !== '') relations.add(name);
        }
      }
      break;
  }

  // The walk. `live` is false below an EXPLAIN without ANALYZE: that query is planned, not run,
  // so what it would do is not a feature of this statement (its relations and functions still are).
  const stack: Array<{ v: unknown; live: boolean }> = [];
  if (kind === 'ExplainStmt' && !explainAnalyzes(top)) {
    stack.push({ v: top, live: false });
  } else {
    stack.push({ v: top, live: true });
    if (kind === 'ExplainStmt' || kind === 'PrepareStmt' || kind === 'DeclareCursorStmt') {
      // EXPLAIN ANALYZE runs its query, PREPARE and DECLARE name a query that EXECUTE and FETCH
      // will run: each takes on the features of that query's kind (PREPARE … AS DELETE is a write).
      const inner = asObj(top.query);
      const innerKind = inner === undefined ? undefined : Object.keys(inner)[0];
      if (innerKind !== undefined) for (const f of kindFeatures(innerKind)) features.add(f);
    }
  }
  while (stack.length > 0) {
    const { v, live } = stack.pop()!;
    if (Array.isArray(v)) {
      for (const item of v) if (item !== null && typeof item === 'object') stack.push({ v: item, live });
      continue;
    }
    const o = v as Obj;
    if (typeof o.relname === 'string') relations.add(rangeVarName(o)); // RangeVar, wrapped or not
    for (const key of Object.keys(o)) {
      const child = o[key];
      if (child === null || typeof child !== 'object') continue;
      if (key === 'FuncCall' || key === 'funccall') onFuncCall(child as Obj, live, features, functions);
      else if (live && (key === 'UpdateStmt' || key === 'DeleteStmt')) onUpdateOrDelete(child as Obj, features);
      else if (live && key === 'InsertStmt') features.add('write');
      else if (live && key === 'MergeStmt') onMerge(child as Obj, features);
      stack.push({ v: child, live });
    }
  }

  return { kind, features: [...features], relations: [...relations], functions: [...functions] };
}

function onFuncCall(call: Obj, live: boolean, features: Set<StatementFeature>, functions: Set<string>): void {
  const parts = nameParts(asArray(call.funcname));
  if (parts.length === 0) return;
  functions.add(parts.join('.').toLowerCase());
  if (!live) return;
  if (isDangerousFunction(parts)) features.add('dangerous_function');
  if (!isBuiltinFunction(parts)) features.add('function_call');
  if (parts[parts.length - 1]!.toLowerCase() === 'set_config') {
    // set_config('role', …) is SET ROLE by another name. A setting name that is not a constant
    // could be anything, so it counts as a role change and as dangerous.
    const setting = constantString(asArray(call.args)[0]);
    if (setting === undefined) features.add('role_change').add('dangerous_function');
    else features.add(ROLE_SETTINGS.has(setting.toLowerCase()) ? 'role_change' : 'session_setting');
  }
}

/** UPDATE/DELETE anywhere (top level or in a CTE): a write, and without WHERE when the WHERE cannot narrow it. */
function onUpdateOrDelete(node: Obj, features: Set<StatementFeature>): void {
  features.add('write');
  if (!whereNarrows(node.whereClause)) features.add('dml_without_where');
}

/**
 * A WHERE narrows the rows only if it mentions a column (or is WHERE CURRENT OF). `WHERE true`,
 * `WHERE 1=1` and `WHERE now() > '2000-01-01'` touch every row, so they count as no WHERE. A
 * predicate that mentions a column yet is always true (`id = id`) is not caught.
 */
function whereNarrows(where: unknown): boolean {
  if (where === undefined || where === null) return false;
  const stack: unknown[] = [where];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const x of v) if (x !== null && typeof x === 'object') stack.push(x);
      continue;
    }
    const o = v as Obj;
    if ('ColumnRef' in o || 'CurrentOfExpr' in o) return true;
    for (const child of Object.values(o)) if (child !== null && typeof child === 'object') stack.push(child);
  }
  return false;
}

function copyFeatures(copy: Obj, features: Set<StatementFeature>): void {
  const from = copy.is_from === true;
  features.add(from ? 'write' : 'read');
  if (copy.is_program === true) features.add('copy_program');
  else if (typeof copy.filename === 'string') features.add('copy_file');
  else features.add(from ? 'copy_in' : 'copy_out');
}

function isRoleSetting(set: Obj): boolean {
  return typeof set.name === 'string' && ROLE_SETTINGS.has(set.name.toLowerCase());
}

/**
 * EXPLAIN runs its query only with ANALYZE (written `analyze`/`analyse`, with no value or a true one).
 * The option may be repeated (`ANALYZE off, ANALYZE on`) and PostgreSQL honours the last one: any
 * true occurrence counts as running it, so no ordering trick hides a write.
 */
function explainAnalyzes(explain: Obj): boolean {
  let runs = false;
  for (const opt of asArray(explain.options)) {
    const def = asObj(asObj(opt)?.DefElem);
    if (def === undefined || (def.defname !== 'analyze' && def.defname !== 'analyse')) continue;
    if (optionTrue(asObj(def.arg))) runs = true;
  }
  return runs;
}

function optionTrue(arg: Obj | undefined): boolean {
  if (arg === undefined) return true;
  const s = asObj(arg.String)?.sval;
  if (typeof s === 'string') return !['false', 'off', 'no', '0'].includes(s.toLowerCase());
  const i = asObj(arg.Integer);
  if (i !== undefined) return i.ival !== undefined && i.ival !== 0; // Integer 0 has no ival
  const b = asObj(arg.Boolean);
  if (b !== undefined) return b.boolval === true;
  return true; // an option value we do not understand: assume it runs
}

/**
 * MERGE … WHEN MATCHED THEN UPDATE/DELETE touches every row its ON condition joins, and that
 * condition (`ON true`) is not a WHERE: conservatively, any MERGE that updates or deletes counts as
 * DML without WHERE, so such rules see it.
 */
function onMerge(merge: Obj, features: Set<StatementFeature>): void {
  features.add('write');
  for (const c of asArray(merge.mergeWhenClauses)) {
    const cmd = asObj(asObj(c)?.MergeWhenClause)?.commandType;
    if (cmd === 'CMD_UPDATE' || cmd === 'CMD_DELETE') features.add('dml_without_where');
  }
}

/** The value of a string constant, looking through casts (`'role'::text`); undefined otherwise. */
function constantString(node: unknown): string | undefined {
  let n = asObj(node);
  for (let i = 0; i < 8 && n !== undefined && 'TypeCast' in n; i++) n = asObj(asObj(n.TypeCast)?.arg);
  const s = asObj(asObj(n?.A_Const)?.sval)?.sval;
  return typeof s === 'string' ? s : undefined;
}

function rangeVarName(rv: Obj): string {
  return [rv.catalogname, rv.schemaname, rv.relname].filter((p) => typeof p === 'string' && p !== '').join('.');
}

/** `[{String:{sval:'a'}}, {String:{sval:'b'}}]` → ['a', 'b']. */
function nameParts(parts: unknown[]): string[] {
  const out: string[] = [];
  for (const p of parts) {
    const s = asObj(asObj(p)?.String)?.sval;
    if (typeof s === 'string') out.push(s);
  }
  return out;
}

/** `[{String:{sval:'a'}}, {String:{sval:'b'}}]` → 'a.b'. */
function nameOf(parts: unknown[]): string {
  return nameParts(parts).join('.');
}

function asObj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
