/**
 * The masking engine: compiled once per policy (per distinct set of mask directives, cached), then
 * called on the hot path with values. It knows nothing of PostgreSQL's protocol; the gateway's
 * result rewriter (protocols/pg/mask-stream.ts) and ingest's at-rest transform both call it.
 *
 *   const engine = createMaskEngine({ hashKey });       // once per process (the key is per deployment)
 *   const plan = engine.plan(decision.mask);           // once per statement: cached per directive set
 *   plan.column('public.users.email')                  // → MaskChoice | undefined
 *   plan.scan('mail bob@example.com')                  // → { text, hits } | undefined
 */
import { resolveMask, stronger, type MaskChoice, type ResolvedMask } from '../policy/mask.ts';
import type { MaskDirective } from '../policy/compile.ts';
import type { Detector } from '../policy/schema.ts';
import { findItems } from './detectors.ts';
import { createHasher, maskItem, maskWhole, type Hasher } from './strategies.ts';

export interface ScanResult {
  /** The masked text; null when an item's strategy is `null` (the whole value becomes NULL). */
  readonly text: string | null;
  /** Items found per detector. */
  readonly hits: ReadonlyMap<Detector, number>;
}

/** The masking decisions for one set of directives (one statement's `decision.mask`). */
export interface MaskPlan {
  /** True when at least one directive names columns (so column lineage matters). */
  readonly hasColumns: boolean;
  /** True when at least one detector is enabled (so every text value is scanned). */
  readonly hasDetectors: boolean;
  /** The strongest choice among all column directives: used where lineage cannot be decided. */
  readonly strongestColumn: MaskChoice | undefined;
  /** The strategy for a resolved `schema.table.column`, or undefined. */
  column(column: string): MaskChoice | undefined;
  /** The rule ids of the directives (for events). */
  readonly ruleIds: readonly string[];
  /** Detected items in `text`, masked; undefined when nothing was found. */
  scan(text: string): ScanResult | undefined;
  /** A whole value under `choice` (text for partial, bytes for hash); null = SQL NULL. */
  maskWhole(text: string, bytes: Uint8Array, choice: MaskChoice): string | null;
  /** The strategy (and rule) of an enabled detector. */
  detectorChoice(d: Detector): MaskChoice | undefined;
}

export interface MaskEngineOptions {
  /** HMAC key of the `hash` strategy (masking.hash_key); absent: `hash` is applied as `redact`. */
  hashKey?: string | Uint8Array;
  /** Distinct directive sets kept (default 1024). */
  maxPlans?: number;
}

export interface MaskEngine {
  plan(directives: readonly MaskDirective[]): MaskPlan;
  /** Whether the `hash` strategy has a key (else it redacts). */
  readonly hasHashKey: boolean;
}

export const NO_MASK: MaskPlan = Object.freeze({
  hasColumns: false,
  hasDetectors: false,
  strongestColumn: undefined,
  column: () => undefined,
  ruleIds: Object.freeze([]) as readonly string[],
  scan: () => undefined,
  maskWhole: () => null,
  detectorChoice: () => undefined,
});

export function createMaskEngine(options: MaskEngineOptions = {}): MaskEngine {
  const hasher = createHasher(options.hashKey);
  const maxPlans = options.maxPlans ?? 1024;
  // Directive objects are frozen per compiled policy, so their identity keys the cache: a reload
  // compiles new directives and old plans simply stop being asked for.
  const plans = new Map<string, { directives: readonly MaskDirective[]; plan: MaskPlan }>();
  const ids = new WeakMap<MaskDirective, number>();
  let nextId = 0;
  const idOf = (d: MaskDirective): number => {
    let id = ids.get(d);
    if (id === undefined) ids.set(d, (id = nextId++));
    return id;
  };
  return {
    hasHashKey: hasher !== undefined,
    plan(directives) {
      if (directives.length === 0) return NO_MASK;
      const key = directives.map(idOf).join(',');
      const hit = plans.get(key);
      if (hit !== undefined) return hit.plan;
      const plan = compilePlan(directives, hasher);
      if (plans.size >= maxPlans) plans.delete(plans.keys().next().value as string);
      plans.set(key, { directives, plan });
      return plan;
    },
  };
}

function compilePlan(directives: readonly MaskDirective[], hasher: Hasher): MaskPlan {
  const resolved: ResolvedMask = resolveMask(directives);
  const columnCache = new Map<string, MaskChoice | null>();
  let strongestColumn: MaskChoice | undefined;
  for (const d of directives) {
    if (d.columns.length === 0) continue;
    const c: MaskChoice = d.keep_last === undefined ? { strategy: d.strategy, rule_id: d.rule_id } : { strategy: d.strategy, keep_last: d.keep_last, rule_id: d.rule_id };
    if (strongestColumn === undefined || stronger(c, strongestColumn)) strongestColumn = c;
  }
  const enabled = new Set(resolved.detectors.keys());
  return Object.freeze({
    hasColumns: strongestColumn !== undefined,
    hasDetectors: enabled.size > 0,
    strongestColumn,
    ruleIds: Object.freeze([...new Set(directives.map((d) => d.rule_id))]),
    column(column: string): MaskChoice | undefined {
      const lower = column.toLowerCase();
      let c = columnCache.get(lower);
      if (c === undefined) {
        c = resolved.column(lower) ?? null;
        if (columnCache.size < 10_000) columnCache.set(lower, c);
      }
      return c ?? undefined;
    },
    scan(text: string): ScanResult | undefined {
      if (enabled.size === 0) return undefined;
      const items = findItems(text, enabled);
      if (items.length === 0) return undefined;
      const hits = new Map<Detector, number>();
      let out = '';
      let at = 0;
      let isNull = false;
      for (const it of items) {
        hits.set(it.detector, (hits.get(it.detector) ?? 0) + 1);
        const replaced = maskItem(text.slice(it.start, it.end), it.detector, resolved.detectors.get(it.detector)!, hasher);
        if (replaced === null) isNull = true;
        else out += text.slice(at, it.start) + replaced;
        at = it.end;
      }
      return { text: isNull ? null : out + text.slice(at), hits };
    },
    maskWhole: (text: string, bytes: Uint8Array, choice: MaskChoice) => maskWhole(text, bytes, choice, hasher),
    detectorChoice: (d: Detector) => resolved.detectors.get(d),
  });
}
