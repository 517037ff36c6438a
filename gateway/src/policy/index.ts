/**
 * The declarative policy engine: parse (YAML → validated, frozen Policy), compile (→ predicates),
 * evaluate (per statement), watch (hot reload). Format and semantics: docs/policy.md.
 */
export { parsePolicy, yamlPath } from './parse.ts';
export { compilePolicy, evaluate, loadPolicy } from './compile.ts';
export type { CommandContext, CompiledPolicy, Decision, DecisionAction, EvalContext, Identity, MaskDirective, SessionLimits, LimitValue, BlockDirective } from './compile.ts';
export { resolveMask, stronger, type MaskChoice, type ResolvedMask } from './mask.ts';
export { watchPolicy, type PolicyHandle, type WatchPolicyOptions } from './watch.ts';
export { POLICY_ERRORS, PolicyError, isPolicyError, formatProblem, type PolicyErrorCode, type PolicyProblem } from './errors.ts';
export { DAYS, DETECTORS, MASK_STRATEGIES, SSH_CHANNEL_KINDS, PolicySchema, type Policy, type Rule, type Detector, type MaskStrategy, type Day } from './schema.ts';
