/**
 * Checks a schema cannot express, run over the raw (possibly schema-invalid) document so that one
 * pass reports everything: a bad time zone in rule 3 is listed together with an unknown key in
 * rule 0. Every access is defensive for that reason; types are proven by the schema, not here.
 */
import { globProblem } from './glob.ts';
import { timezoneProblem, windowProblem } from './time.ts';

export type PathSegment = string | number;
export interface RawProblem {
  path: PathSegment[];
  message: string;
}

const DECISIONS = ['allow', 'block', 'require_approval'] as const;
const STATEMENT_CONDITIONS = ['features', 'relations', 'functions', 'commands', 'channels'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Dotted name patterns: each part is a glob; `parts` bounds how many parts are allowed. */
export function dottedProblem(pattern: string, parts: readonly [number, number], what: string): string | undefined {
  const split = pattern.split('.');
  if (split.length < parts[0] || split.length > parts[1]) {
    return `${what} "${pattern}" must have ${parts[0] === parts[1] ? parts[0] : `${parts[0]} to ${parts[1]}`} dot-separated parts`;
  }
  if (split.some((p) => p === '')) return `${what} "${pattern}" has an empty part`;
  for (const p of split) {
    const problem = globProblem(p);
    if (problem) return problem;
  }
  return undefined;
}

function checkList(out: RawProblem[], path: PathSegment[], list: unknown, check: (s: string) => string | undefined): void {
  if (!Array.isArray(list)) return;
  list.forEach((item, i) => {
    if (typeof item !== 'string' || item === '') return;
    const problem = check(item);
    if (problem) out.push({ path: [...path, i], message: problem });
  });
}

function checkMatch(out: RawProblem[], path: PathSegment[], match: Record<string, unknown>): void {
  for (const key of ['sub', 'groups', 'targets', 'commands'] as const) checkList(out, [...path, key], match[key], globProblem);
  checkList(out, [...path, 'relations'], match.relations, (p) => dottedProblem(p, [1, 2], 'relation pattern'));
  checkList(out, [...path, 'functions'], match.functions, (p) => dottedProblem(p, [1, 2], 'function pattern'));
  const time = match.time;
  if (isObject(time)) {
    if (typeof time.timezone === 'string' && time.timezone !== '') {
      const problem = timezoneProblem(time.timezone);
      if (problem) out.push({ path: [...path, 'time', 'timezone'], message: problem });
    }
    const problem = windowProblem(time);
    if (problem) out.push({ path: [...path, 'time'], message: problem });
  }
  const features = match.features;
  if (isObject(features) && features.any === undefined && features.all === undefined) {
    out.push({ path: [...path, 'features'], message: 'features needs `any` or `all` (or both)' });
  }
}

export function checkPolicy(doc: unknown): RawProblem[] {
  const out: RawProblem[] = [];
  if (!isObject(doc) || !Array.isArray(doc.rules)) return out;
  const seen = new Map<string, number>();
  doc.rules.forEach((rule, i) => {
    if (!isObject(rule)) return;
    const path: PathSegment[] = ['rules', i];
    if (typeof rule.id === 'string') {
      const first = seen.get(rule.id);
      if (first !== undefined) out.push({ path: [...path, 'id'], message: `duplicate rule id "${rule.id}" (first used by rules[${first}])` });
      else seen.set(rule.id, i);
    }
    const decisions = DECISIONS.filter((d) => rule[d] !== undefined);
    if (decisions.length > 1) {
      out.push({ path, message: `a rule takes at most one of allow, block, require_approval (found ${decisions.join(', ')}); split it into two rules` });
    }
    if (decisions.length === 0 && rule.mask === undefined && rule.limits === undefined) {
      out.push({ path, message: 'the rule has no action: give one of allow, block, require_approval, mask, limits' });
    }
    const match = isObject(rule.match) ? rule.match : {};
    checkMatch(out, [...path, 'match'], match);
    if (isObject(rule.require_approval)) checkList(out, [...path, 'require_approval', 'approver_groups'], rule.require_approval.approver_groups, globProblem);
    const mask = rule.mask;
    if (isObject(mask)) {
      if (mask.columns === undefined && mask.detectors === undefined) {
        out.push({ path: [...path, 'mask'], message: 'mask needs `columns` or `detectors` (or both)' });
      }
      checkList(out, [...path, 'mask', 'columns'], mask.columns, (p) => dottedProblem(p, [2, 3], 'column pattern ([schema.]table.column)'));
      if (mask.keep_last !== undefined && mask.strategy !== 'partial') {
        out.push({ path: [...path, 'mask', 'keep_last'], message: 'keep_last applies only to strategy: partial' });
      }
    }
    const limits = rule.limits;
    if (isObject(limits)) {
      if (limits.max_duration_s === undefined && limits.max_rows === undefined) {
        out.push({ path: [...path, 'limits'], message: 'limits needs max_duration_s or max_rows' });
      }
      // Limits are fixed for the session when it starts, before any statement exists; a statement
      // condition would make them depend on which statement happened to be evaluated.
      const conds = STATEMENT_CONDITIONS.filter((c) => match[c] !== undefined);
      if (conds.length > 0) {
        out.push({ path: [...path, 'limits'], message: `limits are per session and cannot depend on statement conditions (${conds.join(', ')}); move them to a rule without those` });
      }
    }
  });
  return out;
}
