/**
 * Privileged command outside a change window: a statement whose parse-tree kind is privileged
 * (DROP, TRUNCATE, GRANT, ALTER ROLE, …) run while no change window covers the identity and target.
 * Repeats in one session are one alert (dedupe key = session) that lists them as evidence.
 */
import type { DetectConfig } from '../config.ts';
import { inChangeWindow, type CompiledChangeWindow } from '../schedule.ts';
import type { Detector } from '../types.ts';

export function privileged(config: DetectConfig['privileged'], windows: readonly CompiledChangeWindow[]): Detector {
  const kinds = new Set(config.statement_kinds);
  return {
    name: 'privileged',
    kinds: ['query'],
    observe(obs, ctx) {
      if (obs.kind !== 'query') return [];
      const hit = obs.stmt_kinds.filter((k) => kinds.has(k));
      if (hit.length === 0 || inChangeWindow(windows, obs.time, obs.s.sub, obs.s.target_id)) return [];
      const seen = ctx.session<string[]>(obs.session_id, 'privileged', () => []);
      seen.push(obs.event_id);
      return [{
        rule: 'privileged.outside_change_window',
        severity: config.severity,
        summary: `privileged statement (${[...new Set(hit)].join(', ')}) outside any change window${seen.length > 1 ? `, ${seen.length} in this session` : ''}`,
        evidence: seen.slice(-20),
        facts: { statement_kinds: [...new Set(hit)].join(','), count_in_session: seen.length },
        dedupe_key: obs.session_id,
      }];
    },
  };
}
