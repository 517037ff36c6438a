/**
 * Burst of errors (probing): more than max_errors failed statements or policy blocks in one session
 * within window_s. Per-session state in memory is correct here: a session is one partition's.
 */
import type { DetectConfig } from '../config.ts';
import type { Detector } from '../types.ts';

export function errorBurst(config: DetectConfig['error_burst']): Detector {
  const window_us = config.window_s * 1_000_000;
  return {
    name: 'error_burst',
    kinds: ['query', 'blocked'],
    observe(obs, ctx) {
      if (obs.kind === 'query' && !obs.error) return [];
      const recent = ctx.session<{ time: number; id: string }[]>(obs.session_id, 'error_burst', () => []);
      recent.push({ time: obs.time, id: obs.event_id });
      while (recent.length > 0 && recent[0]!.time <= obs.time - window_us) recent.shift();
      if (recent.length <= config.max_errors) return [];
      return [{
        rule: 'error_burst',
        severity: config.severity,
        summary: `${recent.length} failed or blocked statements within ${config.window_s}s in one session`,
        evidence: recent.slice(-20).map((r) => r.id),
        facts: { errors: recent.length, window_s: config.window_s, max_errors: config.max_errors },
        dedupe_key: obs.session_id,
      }];
    },
  };
}
