/**
 * Rare access: the first access to a table by an identity that already has a history
 * (min_history_statements), and — with by_role — by no member of any of its groups either.
 * Tables come from PostgreSQL's own parser (the gateway's SQL analyser).
 */
import type { DetectConfig } from '../config.ts';
import type { Detector, Finding } from '../types.ts';

/** `public.users` and `users` are one table for this purpose. */
const norm = (rel: string): string => rel.toLowerCase().replace(/^public\./, '');

export function rareAccess(config: DetectConfig['rare_access']): Detector {
  return {
    name: 'rare_access',
    kinds: ['query'],
    observe(obs, ctx) {
      if (obs.kind !== 'query' || obs.relations.length === 0) return [];
      const out: Finding[] = [];
      const history = ctx.total('table', obs.s.sub);
      for (const rel of new Set(obs.relations.map(norm))) {
        const mine = ctx.fact('table', obs.s.sub, rel);
        const roles = config.by_role ? obs.s.groups.filter((g) => ctx.fact('role_table', g, rel)) : [];
        ctx.note('table', obs.s.sub, rel, obs.time);
        for (const g of obs.s.groups) ctx.note('role_table', g, rel, obs.time);
        if (mine || roles.length > 0 || history < config.min_history_statements) continue;
        out.push({
          rule: 'rare_access',
          severity: config.severity,
          summary: `first access to table "${rel}" by this identity${config.by_role ? ' and its groups' : ''} (${history} earlier table accesses)`,
          evidence: [obs.event_id],
          facts: { table: rel, history_accesses: history },
          dedupe_key: rel,
        });
      }
      return out;
    },
  };
}
