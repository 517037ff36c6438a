/** Long session: a session lasted longer than max_duration_s (seen at its end, or live at a later statement). */
import type { DetectConfig } from '../config.ts';
import type { Detector } from '../types.ts';

export function longSession(config: DetectConfig['long_session']): Detector {
  const max_us = config.max_duration_s * 1_000_000;
  return {
    name: 'long_session',
    kinds: ['query', 'session_end'],
    observe(obs) {
      const elapsed = obs.kind === 'session_end' ? obs.duration_us : obs.s.started_at > 0 ? obs.time - obs.s.started_at : 0;
      if (elapsed <= max_us) return [];
      return [{
        rule: 'long_session',
        severity: config.severity,
        summary: `session open for ${Math.round(elapsed / 60e6)} min (limit ${Math.round(config.max_duration_s / 60)} min)`,
        evidence: [obs.event_id],
        facts: { duration_s: Math.round(elapsed / 1e6), max_duration_s: config.max_duration_s },
        dedupe_key: obs.session_id,
      }];
    },
  };
}
