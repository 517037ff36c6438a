/**
 * Off-hours: a session started, or a statement ran, outside the identity's working hours (its own
 * schedule or the organisation's, in that schedule's time zone, holidays excluded) and outside any
 * change window that covers it. One alert per session (dedupe key = session).
 */
import type { DetectConfig } from '../config.ts';
import { compileSchedule, inChangeWindow, type CompiledChangeWindow } from '../schedule.ts';
import type { Detector } from '../types.ts';

export function offHours(config: DetectConfig['off_hours'], windows: readonly CompiledChangeWindow[]): Detector {
  const org = compileSchedule(config.schedule);
  const own = new Map(Object.entries(config.identities).map(([sub, s]) => [sub, compileSchedule(s)]));
  const kinds = new Set<string>(config.actor_kinds);
  return {
    name: 'off_hours',
    kinds: ['session_start', 'query'],
    observe(obs) {
      if (obs.s.actor_kind !== '' && !kinds.has(obs.s.actor_kind)) return [];
      const working = own.get(obs.s.sub) ?? org;
      if (working(obs.time)) return [];
      if (inChangeWindow(windows, obs.time, obs.s.sub, obs.s.target_id)) return [];
      return [{
        rule: 'off_hours',
        severity: config.severity,
        summary: `${obs.kind === 'session_start' ? 'session started' : 'statement ran'} outside working hours at ${new Date(obs.time / 1000).toISOString()}`,
        evidence: [obs.event_id],
        facts: { schedule: own.has(obs.s.sub) ? 'identity' : 'organisation', at: new Date(obs.time / 1000).toISOString() },
        dedupe_key: obs.session_id,
      }];
    },
  };
}
