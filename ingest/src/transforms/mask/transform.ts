/**
 * Masking at rest (issue 3 item 6): what ingest stores for replay and search holds no value the
 * policy masks. The same compiled engine as the gateway's (gateway/src/mask/), per stored item:
 *
 * - `queries.statement`: literals that meet a masked column (literals.ts: comparisons, calls,
 *   INSERT/UPDATE/MERGE targets, found on the parse tree with a catalog made of the mask rules,
 *   policy-catalog.ts), then every detector of the statement's rules over the text;
 * - `queries.params`: a parameter bound where a masked column meets it takes that column's
 *   strategy; the others pass the detectors. A statement whose text ingest never saw (restart
 *   after its Parse) has every parameter masked with the strongest column rule in force;
 * - `queries.error` and the result preview (already masked inline: the s2c frames hold what the
 *   client received): detectors again, and any echo of a literal masked above is redacted;
 * - `events.detail` (JSON of non-frame events): `policy.blocked.statement` and
 *   `approval.requested.statement` as statements; every other string value through the detectors.
 *
 * Which rules: the session's decision, evaluated as the gateway evaluated it (identity, target,
 * statement features, at the event's time), so a session is stored masked as its caller saw it.
 * When the session's identity is unknown (ingest restarted and no `sessions` row), every mask rule
 * of the policy applies. Pure per call; the policy and key come from the runtime (runtime.ts).
 */
import type { ChainedEvent, QueryEvent } from '@vigil/schemas';
import { evaluate, type MaskDirective } from '@vigil/gateway/policy/index';
import { NO_MASK, type MaskPlan } from '@vigil/gateway/mask/engine';
import { maskParams, maskStatementText, scrubValues, type LiteralCatalog } from '@vigil/gateway/mask/literals';
import { policyCatalog } from '@vigil/gateway/mask/policy-catalog';
import { REDACTED } from '@vigil/gateway/mask/strategies';
import { DETECTORS } from '@vigil/gateway/policy/schema';
import type { SessionInfo } from '../../sinks/clickhouse/rows.ts';
import type { MaskingRuntime } from './runtime.ts';

export interface Preview {
  columns: string[];
  rows: (string | null)[][];
}

/** Without a policy, `redact`: one column rule covering everything, applied to every constant. */
const REDACT_ALL: MaskDirective = Object.freeze({ rule_id: 'ingest.without_policy', columns: ['*'], detectors: [], strategy: 'redact', matchColumn: () => true });
const NO_CATALOG: LiteralCatalog = { relations: () => [] };
/** Without a policy, `redact`, for free text that has no constants (terminal output): every detector. */
const REDACT_DETECTED: MaskDirective = Object.freeze({ rule_id: 'ingest.without_policy', columns: [], detectors: DETECTORS, strategy: 'redact', matchColumn: () => false });

export class AtRestMasker {
  private readonly catalogs = new WeakMap<MaskPlan, LiteralCatalog>();

  constructor(private readonly rt: MaskingRuntime) {}

  /** The plan for a statement (or, without one, for the session) of this session at `timeUs`. */
  private plan(info: SessionInfo | undefined, timeUs: number, statement: string | undefined): { plan: MaskPlan; directives: readonly MaskDirective[] } {
    const policy = this.rt.policy();
    if (!policy) return { plan: NO_MASK, directives: [] };
    if (!info || info.sub === '') return { plan: this.rt.engine.plan(policy.masks), directives: policy.masks };
    const identity = { sub: info.sub, groups: info.groups, actor_kind: info.actor_kind === 'agent' ? ('agent' as const) : ('human' as const) };
    const base = { identity, target_id: info.target_id, now: new Date(timeUs / 1000) };
    const analyses = statement && this.rt.analyser ? this.rt.analyser.analyse(statement) : [];
    const seen = new Set<MaskDirective>();
    for (const a of analyses.length > 0 ? analyses : [undefined]) {
      for (const d of evaluate(policy, a ? { ...base, statement: a } : base).mask) seen.add(d);
    }
    const directives = [...seen];
    return { plan: directives.length === 0 ? NO_MASK : this.rt.engine.plan(directives), directives };
  }

  private catalogOf(plan: MaskPlan, directives: readonly MaskDirective[]): LiteralCatalog {
    let c = this.catalogs.get(plan);
    if (!c) this.catalogs.set(plan, (c = policyCatalog(directives)));
    return c;
  }

  /**
   * The plan for free text of a session at `timeUs` (terminal output and input, command lines,
   * screens): the detectors of the mask rules that apply to the session. Columns mean nothing
   * there. Without a policy, `redact` runs every detector; `store` none.
   */
  textPlan(info: SessionInfo | undefined, timeUs: number): MaskPlan {
    const mode = this.rt.mode;
    if (mode === 'store') return NO_MASK;
    if (mode === 'redact') return this.rt.engine.plan([REDACT_DETECTED]);
    return this.plan(info, timeUs, undefined).plan;
  }

  /** A decoded query and its preview, as they are stored. */
  query(q: QueryEvent, preview: Preview | undefined, info: SessionInfo | undefined, statementKnown: boolean): { query: QueryEvent; preview: Preview | undefined } {
    const mode = this.rt.mode;
    if (mode === 'store') return { query: q, preview };
    if (mode === 'redact') {
      const plan = this.rt.engine.plan([REDACT_ALL]);
      const m = maskStatementText(q.statement, plan, NO_CATALOG, { everyConstant: true });
      const out: QueryEvent = { ...q, statement: m.text, params: q.params.map((p) => (p === null ? null : REDACTED)) };
      if (q.error !== undefined) out.error = scrubValues(q.error, [...m.values, ...q.params.filter((p): p is string => p !== null)]);
      return { query: out, preview };
    }
    const { plan, directives } = this.plan(info, q.time, q.statement);
    if (plan === NO_MASK) return { query: q, preview };
    const m = maskStatementText(q.statement, plan, this.catalogOf(plan, directives));
    let params: (string | null)[];
    if (!statementKnown && plan.strongestColumn) {
      const strongest = plan.strongestColumn;
      params = q.params.map((p) => (p === null ? null : plan.maskWhole(p, Buffer.from(p, 'utf8'), strongest)));
    } else params = maskParams(q.params, m.params, plan);
    // Values hidden from the statement or parameters must not come back through an echo.
    const hidden = [...m.values, ...q.params.flatMap((p, i) => (p !== null && params[i] !== p ? [p] : []))];
    const text = (s: string): string => {
      const r = plan.scan(scrubValues(s, hidden));
      return r ? (r.text ?? REDACTED) : scrubValues(s, hidden);
    };
    const out: QueryEvent = { ...q, statement: m.text, params };
    if (q.error !== undefined) out.error = text(q.error);
    const pv = preview && {
      columns: preview.columns.map(text),
      rows: preview.rows.map((row) =>
        row.map((v) => {
          if (v === null) return null;
          const s = scrubValues(v, hidden);
          const r = plan.scan(s);
          return r ? r.text : s;
        }),
      ),
    };
    return { query: out, preview: pv };
  }

  /** A chained event as `events.detail` will hold it (frames carry no payload there: unchanged). */
  event(e: ChainedEvent, info: SessionInfo | undefined): ChainedEvent {
    if (e.type === 'frame') return e;
    if (e.type === 'policy.loaded') this.rt.onGatewayPolicy();
    const mode = this.rt.mode;
    if (mode === 'store') return e;
    const statement = e.type === 'policy.blocked' || e.type === 'approval.requested' ? e.statement : undefined;
    if (mode === 'redact') {
      if (statement === undefined) return e;
      const m = maskStatementText(statement, this.rt.engine.plan([REDACT_ALL]), NO_CATALOG, { everyConstant: true });
      return { ...e, statement: m.text } as ChainedEvent;
    }
    const { plan, directives } = this.plan(info ?? infoOf(e), e.time, statement);
    if (plan === NO_MASK) return e;
    let hidden: readonly string[] = [];
    let out: Record<string, unknown> = e as unknown as Record<string, unknown>;
    if (statement !== undefined) {
      const m = maskStatementText(statement, plan, this.catalogOf(plan, directives));
      hidden = m.values;
      out = { ...out, statement: m.text };
    }
    if (!plan.hasDetectors && hidden.length === 0) return out as unknown as ChainedEvent;
    const masked: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(out)) masked[k] = ENVELOPE_KEEP.has(k) || k === 'statement' ? v : scrubDeep(v, plan, hidden, 0);
    return masked as unknown as ChainedEvent;
  }
}

/** Envelope members are identities, hashes and ids, stored in their own columns: never rewritten. */
const ENVELOPE_KEEP = new Set(['type', 'version', 'event_id', 'time', 'session_id', 'seq', 'prev_hash', 'hash', 'gateway_id', 'gateway_version', 'sub', 'groups', 'issuer', 'target_id']);

function scrubDeep(v: unknown, plan: MaskPlan, hidden: readonly string[], depth: number): unknown {
  if (typeof v === 'string') {
    const s = scrubValues(v, hidden);
    const r = plan.scan(s);
    return r ? (r.text ?? REDACTED) : s;
  }
  if (depth > 32 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => scrubDeep(x, plan, hidden, depth + 1));
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) o[k] = scrubDeep(x, plan, hidden, depth + 1);
  return o;
}

/** Identity from an event's own envelope (the gateway's chain, or a session whose start was not seen). */
function infoOf(e: ChainedEvent): SessionInfo | undefined {
  if (!e.sub) return undefined;
  return {
    started_at: e.time, sub: e.sub, groups: e.groups ?? [], issuer: e.issuer ?? '', actor_kind: e.actor_kind ?? '', client_addr: '', client_app: '',
    target_id: e.target_id ?? '', protocol: e.protocol ?? '', target_addr: '', db_name: '', db_user: '', gateway_id: e.gateway_id, tls: false, upstream_tls: false,
  };
}
