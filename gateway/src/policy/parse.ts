/**
 * Policy file text → validated, defaulted, deeply frozen Policy. Every problem of the file (YAML
 * syntax, schema, and check.ts's semantic checks) is collected and thrown at once as a
 * PolicyError, each with its YAML path and line/column.
 */
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import { Value, type ValueError } from '@sinclair/typebox/value';
import { PolicySchema, type Policy } from './schema.ts';
import { checkPolicy, type PathSegment, type RawProblem } from './check.ts';
import { PolicyError, type PolicyProblem } from './errors.ts';

/** `rules[2].match.time.timezone` */
export function yamlPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function pointerSegments(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

/** Line/column of the deepest node on `path` that exists in the document (1-based). */
function position(doc: Document, lc: LineCounter, path: readonly PathSegment[]): { line?: number; col?: number } {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return lc.linePos(node.range[0]);
  }
  return {};
}

function schemaMessage(e: ValueError): string {
  const schema = e.schema as { anyOf?: { const?: unknown }[]; const?: unknown; 'x-expected'?: string };
  if (schema['x-expected'] !== undefined && typeof e.value === 'string') return `expected ${schema['x-expected']}; got ${JSON.stringify(e.value)}`;
  if (schema.anyOf && schema.anyOf.every((s) => s.const !== undefined)) {
    return `expected one of ${schema.anyOf.map((s) => JSON.stringify(s.const)).join(', ')}; got ${JSON.stringify(e.value)}`;
  }
  if (e.message === 'Unexpected property') return 'unknown key';
  if (e.message === 'Expected required property') return 'required key is missing';
  if (schema.const !== undefined) return `expected ${JSON.stringify(schema.const)}; got ${JSON.stringify(e.value)}`;
  return e.message;
}

function schemaProblems(value: unknown): RawProblem[] {
  const out: RawProblem[] = [];
  const missing = new Set<string>();
  for (const e of Value.Errors(PolicySchema, value)) {
    // TypeBox reports a missing key twice ("required" then "expected string"); keep the first.
    if (missing.has(e.path)) continue;
    if (e.message === 'Expected required property') missing.add(e.path);
    out.push({ path: pointerSegments(e.path), message: schemaMessage(e) });
  }
  return out;
}

/** Shorthands expanded before validation; each keeps the user's path unchanged. */
function expandShorthands(raw: unknown): void {
  const rules = (raw as { rules?: unknown } | null)?.rules;
  if (!Array.isArray(rules)) return;
  for (const rule of rules) {
    if (rule && typeof rule === 'object' && (rule as Record<string, unknown>).block === true) (rule as Record<string, unknown>).block = {};
  }
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/**
 * Parse and validate. `source` names the file in error messages. Throws PolicyError
 * (GW_ERR_POLICY_SYNTAX or GW_ERR_POLICY_INVALID) listing every problem.
 */
export function parsePolicy(text: string, source = 'policy'): Policy {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems: PolicyProblem[] = doc.errors.map((e) => ({ path: '', ...lc.linePos(e.pos[0]), message: e.message.split('\n')[0] }));
    throw new PolicyError('GW_ERR_POLICY_SYNTAX', source, problems);
  }
  let raw: unknown;
  try {
    // A small alias budget: a policy has no reason for many aliases, and this stops "billion laughs".
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new PolicyError('GW_ERR_POLICY_SYNTAX', source, [{ path: '', message: (err as Error).message }]);
  }
  if (raw === null || raw === undefined) {
    throw new PolicyError('GW_ERR_POLICY_INVALID', source, [{ path: '', message: 'the policy file is empty (it needs at least `version: 1`)' }]);
  }
  expandShorthands(raw);
  const value = Value.Default(PolicySchema, raw);
  const raws = [...schemaProblems(value), ...checkPolicy(value)];
  if (raws.length > 0) {
    const problems = raws
      .map((p) => ({ path: yamlPath(p.path), ...position(doc, lc, p.path), message: p.message }))
      .sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
    throw new PolicyError('GW_ERR_POLICY_INVALID', source, problems);
  }
  return deepFreeze(value as Policy);
}
