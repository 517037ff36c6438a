/**
 * Bulk read: one statement, or the identity's statements over a sliding window (all its sessions),
 * returned more rows/bytes than an absolute limit or than `baseline_factor` × the identity's own
 * baseline (its usual largest statement; its usual busiest hour), once the baseline has enough
 * history. The baseline comes from `detect_hourly` (ClickHouse), so every ingest instance and every
 * restart sees the same one.
 */
import type { DetectConfig } from '../config.ts';
import type { Detector, Finding } from '../types.ts';

export function bulkRead(config: DetectConfig['bulk_read']): Detector {
  const window_us = config.window_s * 1_000_000;
  return {
    name: 'bulk_read',
    kinds: ['query'],
    observe(obs, ctx) {
      if (obs.kind !== 'query' || obs.error) return [];
      const out: Finding[] = [];
      const b = ctx.baseline(obs.s.sub);
      const trusted = b.active_hours >= config.baseline_min_hours;
      const f = (rule: string, summary: string, facts: Finding['facts']): Finding => ({
        rule, severity: config.severity, summary, evidence: [obs.event_id], facts, dedupe_key: rule === 'bulk_read.window' ? '' : obs.session_id,
      });
      if (obs.rows > config.max_rows_per_query || obs.bytes > config.max_bytes_per_query) {
        out.push(f('bulk_read.per_query', `one statement returned ${obs.rows} rows / ${obs.bytes} bytes (limit ${config.max_rows_per_query} rows / ${config.max_bytes_per_query} bytes)`, {
          rows: obs.rows, bytes: obs.bytes, max_rows: config.max_rows_per_query, max_bytes: config.max_bytes_per_query,
        }));
      } else if (trusted && obs.rows >= config.baseline_min_rows && obs.rows > config.baseline_factor * b.p95_max_rows) {
        out.push(f('bulk_read.per_query_baseline', `one statement returned ${obs.rows} rows, ${(obs.rows / Math.max(1, b.p95_max_rows)).toFixed(1)}× this identity's usual largest (${b.p95_max_rows})`, {
          rows: obs.rows, baseline_rows: b.p95_max_rows, factor: config.baseline_factor, active_hours: b.active_hours,
        }));
      }
      ctx.noteRows(obs.s.sub, obs.time, obs.rows);
      const inWindow = ctx.windowRows(obs.s.sub, obs.time, window_us);
      const overAbsolute = inWindow > config.max_rows_per_window;
      const overBaseline = trusted && inWindow >= config.baseline_min_rows && inWindow > config.baseline_factor * b.p95_hour_rows;
      if (overAbsolute || overBaseline) {
        out.push(f('bulk_read.window', `${inWindow} rows in ${config.window_s}s across the identity's sessions (${overAbsolute ? `limit ${config.max_rows_per_window}` : `${config.baseline_factor}× its usual busiest hour, ${b.p95_hour_rows}`})`, {
          window_rows: inWindow, window_s: config.window_s, max_rows_per_window: config.max_rows_per_window, baseline_hour_rows: b.p95_hour_rows,
        }));
      }
      return out;
    },
  };
}
