/**
 * New source: an identity with an established history (min_history_sessions) connects from a
 * client address (host) or with a client application never seen for it. The history is the
 * `detect_facts` rows the `sessions` materialized views maintain (kinds addr/app).
 */
import type { DetectConfig } from '../config.ts';
import type { Detector, Finding } from '../types.ts';

export const hostOf = (addr: string): string => addr.replace(/:\d+$/, '');

export function newSource(config: DetectConfig['new_source']): Detector {
  return {
    name: 'new_source',
    kinds: ['session_start'],
    observe(obs, ctx) {
      const out: Finding[] = [];
      const history = ctx.total('addr', obs.s.sub);
      const values = { addr: hostOf(obs.s.client_addr), app: obs.s.client_app };
      for (const kind of config.kinds) {
        const value = values[kind];
        if (value === '') continue;
        const known = ctx.fact(kind, obs.s.sub, value);
        ctx.note(kind, obs.s.sub, value, obs.time);
        if (known || history < config.min_history_sessions) continue;
        out.push({
          rule: `new_source.${kind}`,
          severity: config.severity,
          summary: `${kind === 'addr' ? 'client address' : 'client application'} "${value}" never seen for this identity (${history} earlier sessions)`,
          evidence: [obs.event_id],
          facts: { [kind]: value, history_sessions: history },
          dedupe_key: `${kind}:${value}`,
        });
      }
      return out;
    },
  };
}
