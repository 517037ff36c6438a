/** Test helpers: hand-built StatementAnalysis objects (the analyser is a separate piece). */
import type { StatementAnalysis, StatementFeature } from '../sql/features.ts';
import type { EvalContext, Identity } from './compile.ts';

export function stmt(features: StatementFeature[], relations: string[] = [], functions: string[] = [], kind = 'SelectStmt'): StatementAnalysis {
  return { text: '-- test', kind, features, relations, functions };
}

export const UNPARSABLE: StatementAnalysis = { text: 'SELEC 1', kind: 'unparsable', features: ['unparsable'], relations: [], functions: [], error: 'syntax error' };

export const agent: Identity = { sub: 'svc-reporting', groups: ['bots'], actor_kind: 'agent' };
export const alice: Identity = { sub: 'alice@example.com', groups: ['analyst', 'staff'], actor_kind: 'human' };
export const dba: Identity = { sub: 'bob@example.com', groups: ['dba'], actor_kind: 'human' };

/** Wednesday 2024-06-12 12:00 UTC. */
export const NOON_WED = new Date('2024-06-12T12:00:00Z');

export function ctx(identity: Identity, statement?: StatementAnalysis, target_id = 'prod-eu', now = NOON_WED): EvalContext {
  return statement === undefined ? { identity, target_id, now } : { identity, target_id, now, statement };
}
