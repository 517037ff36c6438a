/**
 * Compile a validated policy once into plain predicates, and evaluate it per statement.
 *
 * Precedence (docs/policy.md, "Precedence"):
 * 1. Only rules whose `targets` match the target are considered (a rule without `targets` applies
 *    to every target). A target with at least one such rule is "governed".
 * 2. Decision rules (allow / block / require_approval): the FIRST matching one in file order
 *    decides; later decision rules are not consulted.
 * 3. Directive rules (mask / limits): EVERY matching one applies, whatever the decision and wherever
 *    it sits in the file, so an earlier `allow` can never switch masking off. Limits combine to the
 *    smallest value of each.
 * 4. No decision rule matched: `defaults.action` (allow unless set).
 * 5. Unparsable statement on a governed target: only a rule that names the `unparsable` feature may
 *    decide (a broad "allow group dba" must not wave through what nobody could analyse); otherwise
 *    `defaults.unparsable` (block unless set).
 *
 * A rule with statement conditions (features, relations, functions) never matches when the context
 * has no statement (session start).
 */
import { STATEMENT_FEATURES, type StatementAnalysis } from '../sql/features.ts';
import type { ApprovalAction, Detector, MaskStrategy, Policy, Rule, SshChannelKind } from './schema.ts';
import { compileGlobList } from './glob.ts';
import { compileWindow, localClock, type LocalTime } from './time.ts';
import { parsePolicy } from './parse.ts';
import type { PolicyErrorCode } from './errors.ts';

export type DecisionAction = 'allow' | 'block' | 'require_approval';

export interface Identity {
  sub: string;
  groups: readonly string[];
  actor_kind: 'agent' | 'human';
}

export interface EvalContext {
  identity: Identity;
  target_id: string;
  now: Date;
  /** Absent at session start: then rules with statement conditions do not match. */
  statement?: StatementAnalysis;
  /** SSH: what a channel is about to run (docs/ssh.md); only `commands`/`channels` conditions read it. */
  command?: CommandContext;
}

/** The statement-like context of an SSH command: the line, its simple segments, its channel kind. */
export interface CommandContext {
  readonly channel: SshChannelKind;
  /** The command line (exec: exactly as sent; shell: the reconstructed line). */
  readonly line: string;
  /** The line split at `;`, `&&`, `||`, `|`, `&` and newlines, trimmed (best effort; quotes respected). */
  readonly segments: readonly string[];
}

export interface MaskDirective {
  readonly rule_id: string;
  readonly columns: readonly string[];
  readonly detectors: readonly Detector[];
  readonly strategy: MaskStrategy;
  /** For `partial`: characters left visible (default 4). */
  readonly keep_last?: number;
  /** `schema.table.column` (as the masking engine resolves it) → is it covered by `columns`? */
  matchColumn(column: string): boolean;
}

export interface LimitValue {
  readonly value: number;
  readonly rule_id: string;
}

export interface SessionLimits {
  readonly max_duration_s?: LimitValue;
  readonly max_rows?: LimitValue;
}

export interface BlockDirective {
  readonly sqlstate: string;
  /** Always names the rule (or says it was the default / unparsable). */
  readonly message: string;
  readonly code: Extract<PolicyErrorCode, 'GW_ERR_POLICY_BLOCKED' | 'GW_ERR_POLICY_UNPARSABLE'>;
}

export interface Decision {
  readonly action: DecisionAction;
  /** The deciding rule; null when a default decided. */
  readonly rule_id: string | null;
  /** rule: a rule decided; default: defaults.action; unparsable: defaults.unparsable. */
  readonly reason: 'rule' | 'default' | 'unparsable';
  readonly block?: BlockDirective;
  readonly approval?: Readonly<ApprovalAction>;
  /** Every matching mask rule, in file order (resolve overlaps with mask.ts). */
  readonly mask: readonly MaskDirective[];
  readonly limits: SessionLimits;
}

type DecisionBase = Pick<Decision, 'action' | 'rule_id' | 'reason' | 'block' | 'approval'>;
type Predicate = (ctx: EvalContext, stmt: StatementAnalysis | undefined, bits: number) => boolean;

interface CompiledRule {
  readonly id: string;
  readonly appliesTo: (target_id: string) => boolean;
  readonly matches: Predicate;
  readonly decision?: DecisionBase;
  /** Named the `unparsable` feature, so it may decide an unparsable statement. */
  readonly decidesUnparsable: boolean;
  readonly mask?: MaskDirective;
  readonly limits?: SessionLimits;
}

interface TargetView {
  readonly rules: readonly CompiledRule[];
  readonly governed: boolean;
}

export interface CompiledPolicy {
  readonly policy: Policy;
  readonly source: string;
  /** Rules that apply to this target, in file order (cached per target id). */
  forTarget(target_id: string): TargetView;
  readonly defaultDecision: DecisionBase;
  readonly unparsableDecision: DecisionBase;
  /** Every mask directive, whatever it matches: for masking at rest when a session's identity is unknown. */
  readonly masks: readonly MaskDirective[];
}

const FEATURE_BIT: Record<string, number> = Object.fromEntries(STATEMENT_FEATURES.map((f, i) => [f, 1 << i]));
const UNPARSABLE_BIT = FEATURE_BIT.unparsable;
const EMPTY_MASK: readonly MaskDirective[] = Object.freeze([]);
const NO_LIMITS: SessionLimits = Object.freeze({});
/** Distinct target ids seen by one compiled policy are few (they come from configuration); the bound is only a guard. */
const TARGET_CACHE_MAX = 4096;

function bitsOf(features: readonly string[]): number {
  let bits = 0;
  for (const f of features) bits |= FEATURE_BIT[f] ?? 0;
  return bits;
}

/** Last two parts of a dotted name: [schema or undefined, name]. */
function splitQualified(name: string): [string | undefined, string] {
  const dot = name.lastIndexOf('.');
  if (dot < 0) return [undefined, name];
  const prev = name.lastIndexOf('.', dot - 1);
  return [name.slice(prev + 1, dot), name.slice(dot + 1)];
}

/**
 * Relations and functions: `schema.name` or `name` patterns, case-insensitive (PostgreSQL folds
 * unquoted identifiers). A pattern without a schema matches the name in any schema. A statement
 * name without a schema matches on its name alone: the gateway cannot know the session's
 * search_path, and erring toward a match is the safe side for block, approval and mask.
 */
function compileQualifiedList(patterns: readonly string[]): (names: readonly string[]) => boolean {
  const bare: string[] = [];
  const qualified: { schema: (s: string) => boolean; name: (s: string) => boolean }[] = [];
  for (const p of patterns) {
    const [schema, name] = splitQualified(p);
    if (schema === undefined) bare.push(name);
    else qualified.push({ schema: compileGlobList([schema], true), name: compileGlobList([name], true) });
  }
  const bareMatch = bare.length > 0 ? compileGlobList(bare, true) : undefined;
  return (names) => {
    for (const n of names) {
      const [schema, name] = splitQualified(n);
      if (bareMatch?.(name)) return true;
      for (const q of qualified) if (q.name(name) && (schema === undefined || q.schema(schema))) return true;
    }
    return false;
  };
}

/** Columns: `schema.table.column` or `table.column` patterns against a resolved `schema.table.column`. */
function compileColumnList(patterns: readonly string[]): (column: string) => boolean {
  const compiled = patterns.map((p) => {
    const parts = p.split('.');
    return parts.map((part) => compileGlobList([part], true));
  });
  return (column) => {
    const parts = column.split('.');
    return compiled.some((pat) => {
      if (parts.length < pat.length) return false;
      const offset = parts.length - pat.length; // a 2-part pattern compares table and column only
      return pat.every((m, i) => m(parts[offset + i]));
    });
  };
}

function compileRule(rule: Rule, clocks: Map<string, (now: Date) => LocalTime>): CompiledRule {
  const m = rule.match;
  const preds: Predicate[] = [];
  if (m.actor_kind !== undefined) {
    const kind = m.actor_kind;
    preds.push((ctx) => ctx.identity.actor_kind === kind);
  }
  if (m.sub) {
    const sub = compileGlobList(m.sub);
    preds.push((ctx) => sub(ctx.identity.sub));
  }
  if (m.groups) {
    const group = compileGlobList(m.groups);
    preds.push((ctx) => ctx.identity.groups.some(group));
  }
  if (m.features) {
    const any = m.features.any ? bitsOf(m.features.any) : 0;
    const all = m.features.all ? bitsOf(m.features.all) : 0;
    preds.push((_c, stmt, bits) => stmt !== undefined && (any === 0 || (bits & any) !== 0) && (bits & all) === all);
  }
  if (m.relations) {
    const rel = compileQualifiedList(m.relations);
    preds.push((_c, stmt) => stmt !== undefined && rel(stmt.relations));
  }
  if (m.functions) {
    const fn = compileQualifiedList(m.functions);
    preds.push((_c, stmt) => stmt !== undefined && fn(stmt.functions));
  }
  if (m.commands) {
    const cmd = compileGlobList(m.commands);
    preds.push((ctx) => ctx.command !== undefined && (cmd(ctx.command.line) || ctx.command.segments.some(cmd)));
  }
  if (m.channels) {
    const kinds = new Set<string>(m.channels);
    preds.push((ctx) => ctx.command !== undefined && kinds.has(ctx.command.channel));
  }
  if (m.time) {
    const tz = m.time.timezone;
    let clock = clocks.get(tz);
    if (!clock) clocks.set(tz, (clock = localClock(tz)));
    const inWindow = compileWindow(m.time, clock);
    preds.push((ctx) => inWindow(ctx.now)); // last: the clock is memoised, but still the dearest test
  }
  const matches: Predicate = (ctx, stmt, bits) => {
    for (const p of preds) if (!p(ctx, stmt, bits)) return false;
    return true;
  };

  let decision: DecisionBase | undefined;
  if (rule.allow) decision = { action: 'allow', rule_id: rule.id, reason: 'rule' };
  else if (rule.block) {
    const message = rule.block.message ? `${rule.block.message} (policy rule "${rule.id}")` : `statement blocked by policy rule "${rule.id}"`;
    decision = { action: 'block', rule_id: rule.id, reason: 'rule', block: { sqlstate: rule.block.sqlstate, message, code: 'GW_ERR_POLICY_BLOCKED' } };
  } else if (rule.require_approval) decision = { action: 'require_approval', rule_id: rule.id, reason: 'rule', approval: rule.require_approval };

  let mask: MaskDirective | undefined;
  if (rule.mask) {
    const { columns = [], detectors = [], strategy, keep_last } = rule.mask;
    const matchColumn = columns.length > 0 ? compileColumnList(columns) : () => false;
    mask = { rule_id: rule.id, columns, detectors, strategy, ...(strategy === 'partial' ? { keep_last: keep_last ?? 4 } : {}), matchColumn };
  }
  let limits: SessionLimits | undefined;
  if (rule.limits) {
    const l = rule.limits;
    limits = {
      ...(l.max_duration_s !== undefined ? { max_duration_s: { value: l.max_duration_s, rule_id: rule.id } } : {}),
      ...(l.max_rows !== undefined ? { max_rows: { value: l.max_rows, rule_id: rule.id } } : {}),
    };
  }
  const targets = m.targets ? compileGlobList(m.targets) : () => true;
  return Object.freeze({
    id: rule.id,
    appliesTo: targets,
    matches,
    decision: decision && Object.freeze(decision),
    decidesUnparsable: [...(m.features?.any ?? []), ...(m.features?.all ?? [])].includes('unparsable'),
    mask: mask && Object.freeze(mask),
    limits: limits && Object.freeze(limits),
  });
}

/** Compile the output of parsePolicy. Pure: the same policy always compiles to the same behaviour. */
export function compilePolicy(policy: Policy, source = 'policy'): CompiledPolicy {
  const clocks = new Map<string, (now: Date) => LocalTime>();
  const rules = policy.rules.map((r) => compileRule(r, clocks));
  const views = new Map<string, TargetView>();
  const forTarget = (target_id: string): TargetView => {
    let view = views.get(target_id);
    if (view === undefined) {
      if (views.size >= TARGET_CACHE_MAX) views.clear();
      const applicable = Object.freeze(rules.filter((r) => r.appliesTo(target_id)));
      view = Object.freeze({ rules: applicable, governed: applicable.length > 0 });
      views.set(target_id, view);
    }
    return view;
  };
  const defaultDecision: DecisionBase =
    policy.defaults.action === 'block'
      ? { action: 'block', rule_id: null, reason: 'default', block: { sqlstate: '42501', message: 'statement blocked by the policy default: no rule allows it', code: 'GW_ERR_POLICY_BLOCKED' } }
      : { action: 'allow', rule_id: null, reason: 'default' };
  const unparsableDecision: DecisionBase =
    policy.defaults.unparsable === 'block'
      ? {
          action: 'block',
          rule_id: null,
          reason: 'unparsable',
          block: { sqlstate: '42501', message: 'statement blocked: it could not be parsed, and unparsable statements are blocked on this target by policy', code: 'GW_ERR_POLICY_UNPARSABLE' },
        }
      : { action: 'allow', rule_id: null, reason: 'unparsable' };
  const masks = Object.freeze(rules.flatMap((r) => (r.mask ? [r.mask] : [])));
  return Object.freeze({ policy, source, forTarget, defaultDecision: Object.freeze(defaultDecision), unparsableDecision: Object.freeze(unparsableDecision), masks });
}

/** Parse, validate and compile policy text; throws PolicyError listing every problem. */
export function loadPolicy(text: string, source = 'policy'): CompiledPolicy {
  return compilePolicy(parsePolicy(text, source), source);
}

function mergeLimits(a: SessionLimits, b: SessionLimits): SessionLimits {
  const pick = (x?: LimitValue, y?: LimitValue) => (x === undefined ? y : y === undefined || x.value <= y.value ? x : y);
  const max_duration_s = pick(a.max_duration_s, b.max_duration_s);
  const max_rows = pick(a.max_rows, b.max_rows);
  return { ...(max_duration_s ? { max_duration_s } : {}), ...(max_rows ? { max_rows } : {}) };
}

/** The decision for one statement (or for session start, without `statement`). See the header for precedence. */
export function evaluate(policy: CompiledPolicy, ctx: EvalContext): Decision {
  const view = policy.forTarget(ctx.target_id);
  const stmt = ctx.statement;
  const bits = stmt === undefined ? 0 : bitsOf(stmt.features);
  const unparsable = (bits & UNPARSABLE_BIT) !== 0;
  let decided: DecisionBase | undefined;
  let mask: MaskDirective[] | undefined;
  let limits: SessionLimits | undefined;
  for (const r of view.rules) {
    // Once decided, only directive rules still matter.
    if (decided !== undefined && r.mask === undefined && r.limits === undefined) continue;
    if (!r.matches(ctx, stmt, bits)) continue;
    if (decided === undefined && r.decision !== undefined && (!unparsable || r.decidesUnparsable)) decided = r.decision;
    if (r.mask !== undefined) (mask ??= []).push(r.mask);
    if (r.limits !== undefined) limits = limits === undefined ? r.limits : mergeLimits(limits, r.limits);
  }
  decided ??= unparsable && view.governed ? policy.unparsableDecision : policy.defaultDecision;
  return {
    action: decided.action,
    rule_id: decided.rule_id,
    reason: decided.reason,
    block: decided.block,
    approval: decided.approval,
    mask: mask ?? EMPTY_MASK,
    limits: limits ?? NO_LIMITS,
  };
}
