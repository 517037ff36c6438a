/**
 * Overlapping mask rules: when several directives cover one column (or name one detector), the
 * most restrictive strategy applies, so adding a mask rule can only hide more, never less, and
 * the order of mask rules in the file does not matter:
 *
 *   null  >  redact  >  hash  >  partial (fewer kept characters is stronger)
 *
 * redact keeps a placeholder where a value was; null removes even that, so it wins. hash reveals
 * equality (values still join); partial reveals a suffix.
 * Ties keep the earliest rule in file order (its id is what mask.applied reports).
 */
import type { MaskDirective } from './compile.ts';
import type { Detector, MaskStrategy } from './schema.ts';

export interface MaskChoice {
  readonly strategy: MaskStrategy;
  readonly keep_last?: number;
  readonly rule_id: string;
}

const RANK: Record<MaskStrategy, number> = { partial: 1, hash: 2, redact: 3, null: 4 };

/** True when `a` hides strictly more than `b`. */
export function stronger(a: MaskChoice, b: MaskChoice): boolean {
  if (RANK[a.strategy] !== RANK[b.strategy]) return RANK[a.strategy] > RANK[b.strategy];
  return a.strategy === 'partial' && (a.keep_last ?? 4) < (b.keep_last ?? 4);
}

function choiceOf(d: MaskDirective): MaskChoice {
  return d.keep_last === undefined ? { strategy: d.strategy, rule_id: d.rule_id } : { strategy: d.strategy, keep_last: d.keep_last, rule_id: d.rule_id };
}

export interface ResolvedMask {
  /** The strategy for a resolved `schema.table.column`, or undefined when no rule covers it. */
  column(column: string): MaskChoice | undefined;
  /** Detectors to run on every text value, each with its strategy. */
  readonly detectors: ReadonlyMap<Detector, MaskChoice>;
}

/** Called once per result (RowDescription), not per value: the masking engine caches per column. */
export function resolveMask(directives: readonly MaskDirective[]): ResolvedMask {
  const detectors = new Map<Detector, MaskChoice>();
  for (const d of directives) {
    for (const det of d.detectors) {
      const prev = detectors.get(det);
      const next = choiceOf(d);
      if (prev === undefined || stronger(next, prev)) detectors.set(det, next);
    }
  }
  return {
    column(column) {
      let best: MaskChoice | undefined;
      for (const d of directives) {
        if (!d.matchColumn(column)) continue;
        const next = choiceOf(d);
        if (best === undefined || stronger(next, best)) best = next;
      }
      return best;
    },
    detectors,
  };
}
