/**
 * The detect transform (issue 5): decode → mask → **detect** → ClickHouse.
 *
 * Per batch: observations (observe.ts) → baselines for the batch's identities (state.ts, from
 * ClickHouse) → each enabled detector (detectors/*) → findings → suppression → `alert` events.
 * Alerts are then stored (`alerts`, idempotent on the deterministic alert_id), published on
 * `vigil.alerts.v1`, and only then are the batch's new facts written: if anything fails, the batch
 * is redelivered and re-evaluated against the same baselines, producing the same alert ids.
 */
import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { AlertEvent, ChainedEvent } from '@vigil/schemas';
import { Topics, type Producer } from '@vigil/eventlog/types';
import { createSqlAnalyser, initSqlParser, type SqlAnalyser } from '@vigil/gateway/sql/analyse';
import { chTime, type RowBatch } from '../../sinks/clickhouse/rows.ts';
import { withRetry } from '../../sinks/clickhouse/retry.ts';
import type { Logger } from '../../errors.ts';
import type { DetectConfig } from './config.ts';
import { compileChangeWindows } from './schedule.ts';
import { BatchContext, loadState } from './state.ts';
import { observations, SessionDirectory } from './observe.ts';
import type { Detector, Observation } from './types.ts';
import { bulkRead } from './detectors/bulk-read.ts';
import { offHours } from './detectors/off-hours.ts';
import { overrides } from './detectors/overrides.ts';
import { newSource } from './detectors/new-source.ts';
import { rareAccess } from './detectors/rare-access.ts';
import { longSession } from './detectors/long-session.ts';
import { errorBurst } from './detectors/error-burst.ts';
import { privileged } from './detectors/privileged.ts';

export { DetectConfigSchema, type DetectConfig } from './config.ts';
export { SessionDirectory } from './observe.ts';

export interface DetectStats {
  observations: number;
  findings: number;
  alerts: number;
  suppressed: number;
  by_rule: Record<string, number>;
}

export interface DetectOptions {
  config: DetectConfig;
  store: ClickHouseClient;
  /** Where alerts are published (`vigil.alerts.v1`); without it alerts are only stored. */
  producer?: Producer;
  logger: Logger;
  retry_backoff_ms: number;
  retry_max_ms: number;
  /** Shared with the SIEM export (which maps events of the same sessions); the caller forgets ended sessions. */
  directory?: SessionDirectory;
}

/** Build the enabled detectors from config (exported for tests and the eval harness). */
export function buildDetectors(config: DetectConfig): Detector[] {
  const windows = compileChangeWindows(config.change_windows);
  const all: [boolean, () => Detector][] = [
    [config.bulk_read.enabled, () => bulkRead(config.bulk_read)],
    [config.off_hours.enabled, () => offHours(config.off_hours, windows)],
    [config.overrides.enabled, () => overrides(config.overrides)],
    [config.new_source.enabled, () => newSource(config.new_source)],
    [config.rare_access.enabled, () => rareAccess(config.rare_access)],
    [config.long_session.enabled, () => longSession(config.long_session)],
    [config.error_burst.enabled, () => errorBurst(config.error_burst)],
    [config.privileged.enabled, () => privileged(config.privileged, windows)],
  ];
  return all.filter(([on]) => on).map(([, make]) => make());
}

export function alertId(rule: string, sub: string, dedupe: string, firstEvidence: string): string {
  return createHash('sha256').update(`${rule}\0${sub}\0${dedupe}\0${firstEvidence}`).digest('hex').slice(0, 32);
}

export class DetectTransform {
  readonly stats: DetectStats = { observations: 0, findings: 0, alerts: 0, suppressed: 0, by_rule: {} };
  readonly directory: SessionDirectory;
  private readonly detectors: Detector[];
  private readonly sessionState = new Map<string, Map<string, unknown>>();
  private readonly exempt: Set<string>;

  private constructor(
    private readonly options: DetectOptions,
    private readonly analyser: SqlAnalyser,
  ) {
    this.directory = options.directory ?? new SessionDirectory();
    this.detectors = buildDetectors(options.config);
    this.exempt = new Set(options.config.exempt_subs);
  }

  static async create(options: DetectOptions): Promise<DetectTransform> {
    await initSqlParser();
    return new DetectTransform(options, createSqlAnalyser({ cache_max_entries: 20_000 }));
  }

  /** Evaluate one batch; resolves once its alerts are stored and published. Returns them. */
  async handle(events: ChainedEvent[], rows: RowBatch): Promise<AlertEvent[]> {
    if (!this.options.config.enabled) return [];
    const { config, store } = this.options;
    const retry = { retry_backoff_ms: this.options.retry_backoff_ms, retry_max_ms: this.options.retry_max_ms };
    await withRetry('read back sessions for detection', () => this.directory.resolve(store, events, rows.queries), retry);
    const obs = observations(events, rows.queries, this.directory, this.analyser).filter((o) => o.s.sub !== '' && !this.exempt.has(o.s.sub));
    this.stats.observations += obs.length;
    if (obs.length === 0) return [];
    const subs = [...new Set(obs.map((o) => o.s.sub))];
    const groups = [...new Set(obs.flatMap((o) => o.s.groups))];
    const scope = {
      subs, groups, from_us: obs[0]!.time, to_us: obs.at(-1)!.time, lookback_us: config.lookback_days * 86_400e6,
      window_us: config.bulk_read.window_s * 1e6, suppression_us: config.suppression_window_s * 1e6,
    };
    const state = await withRetry('read detection baselines', () => loadState(store, scope), retry);
    const ctx = new BatchContext(state, (id) => {
      let m = this.sessionState.get(id);
      if (!m) this.sessionState.set(id, (m = new Map()));
      return m;
    });
    const alerts: AlertEvent[] = [];
    for (const o of obs) {
      for (const d of this.detectors) {
        if (!d.kinds.includes(o.kind)) continue;
        for (const f of d.observe(o, ctx)) {
          this.stats.findings++;
          const last = ctx.lastAlert(f.rule, o.s.sub, f.dedupe_key);
          if (last !== undefined && o.time - last < config.suppression_window_s * 1e6) {
            this.stats.suppressed++;
            continue;
          }
          ctx.setLastAlert(f.rule, o.s.sub, f.dedupe_key, o.time);
          alerts.push(this.toAlert(o, f));
        }
      }
    }
    for (const o of obs) if (o.kind === 'session_end') this.sessionState.delete(o.session_id);
    await this.persist(alerts, ctx, retry);
    if (!this.options.directory) for (const o of obs) if (o.kind === 'session_end') this.directory.delete(o.session_id);
    for (const a of alerts) this.stats.by_rule[a.rule] = (this.stats.by_rule[a.rule] ?? 0) + 1;
    this.stats.alerts += alerts.length;
    return alerts;
  }

  private toAlert(o: Observation, f: ReturnType<Detector['observe']>[number]): AlertEvent {
    const id = alertId(f.rule, o.s.sub, f.dedupe_key, f.evidence[0]!);
    return {
      type: 'alert', version: 1, event_id: id, alert_id: id, time: o.time, rule: f.rule, severity: f.severity, sub: o.s.sub, groups: o.s.groups,
      session_id: o.session_id, target_id: o.s.target_id, summary: f.summary, evidence: f.evidence, facts: f.facts, dedupe_key: f.dedupe_key,
    };
  }

  private async persist(alerts: AlertEvent[], ctx: BatchContext, retry: { retry_backoff_ms: number; retry_max_ms: number }): Promise<void> {
    const { store, producer, logger } = this.options;
    if (alerts.length > 0) {
      const values = alerts.map((a) => ({
        alert_id: a.alert_id, time: chTime(a.time), rule: a.rule, severity: a.severity, sub: a.sub, groups: a.groups, session_id: a.session_id,
        target_id: a.target_id, summary: a.summary, evidence: a.evidence, facts: JSON.stringify(a.facts), dedupe_key: a.dedupe_key,
      }));
      await withRetry(`insert into alerts (${values.length} rows)`, () => store.insert({ table: 'alerts', values, format: 'JSONEachRow' }), retry);
      if (producer) {
        await producer.send(Topics.alerts, alerts.map((a) => ({ key: a.sub, value: Buffer.from(JSON.stringify(a)), headers: { type: 'alert', rule: a.rule } })));
      }
      for (const a of alerts) logger.info({ alert_id: a.alert_id, rule: a.rule, severity: a.severity, sub: a.sub, session_id: a.session_id }, 'alert');
    }
    if (ctx.newFacts.length > 0) {
      const values = ctx.newFacts.map((f) => ({ kind: f.kind, sub: f.sub, value: f.value, first_seen: chTime(f.time), last_seen: chTime(f.time), n: 1 }));
      await withRetry(`insert into detect_facts (${values.length} rows)`, () => store.insert({ table: 'detect_facts', values, format: 'JSONEachRow' }), retry);
    }
  }
}
