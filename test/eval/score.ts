/**
 * Scoring for the detection eval, shared by the at-scale corpus (detect.ts) and the gateway sample
 * (gateway-sample.ts) so both tables mean the same thing. Per detector family (the rule's prefix):
 * precision = alerts of the family on injected sessions / all alerts of the family; recall =
 * injected sessions of the family with at least one alert of the family / injected sessions of the
 * family; time-to-alert = median over caught sessions of (first alert's event time − the start of
 * the malicious behaviour). False alerts = benign sessions with any alert / benign sessions.
 */

export interface ScoredSession {
  session_id: string;
  /** Detector family the session was injected for; undefined = benign. */
  attack?: string;
  /** µs when the malicious behaviour started. */
  attack_start?: number;
  /** Neither benign nor scored (the first half of a mutual approval). */
  setup?: boolean;
}

export interface ScoredAlert {
  rule: string;
  session_id: string;
  /** Event time of the alert (the observation that raised it), µs. */
  t: number;
  /** Wall time (µs) the alert was first read back from the API, when measured (gateway sample). */
  seen_us?: number;
}

export interface FamilyScore {
  family: string;
  injected: number;
  alerts: number;
  precision: number;
  recall: number;
  /** Median time-to-alert in seconds (NaN when nothing was caught). */
  tta_s: number;
  /** Median time from the malicious start until the alert was readable via the API, seconds. */
  visible_s?: number;
}

export interface Score {
  families: FamilyScore[];
  benign: number;
  alertedBenign: number;
  falseShare: number;
  worstRecall: number;
  /** Alerts on benign sessions by rule. */
  noisy: Map<string, number>;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
};

export const familyOf = (rule: string): string => rule.split('.')[0]!;

export function score(sessions: readonly ScoredSession[], alerts: readonly ScoredAlert[]): Score {
  const bySession = new Map(sessions.map((s) => [s.session_id, s]));
  const isBenign = (id: string) => {
    const s = bySession.get(id);
    return !!s && !s.attack && !s.setup;
  };
  const families: FamilyScore[] = [];
  let worstRecall = 1;
  for (const family of [...new Set(sessions.filter((s) => s.attack).map((s) => s.attack!))].sort()) {
    const injected = sessions.filter((s) => s.attack === family);
    const mine = alerts.filter((a) => familyOf(a.rule) === family);
    const caught = injected.filter((s) => mine.some((a) => a.session_id === s.session_id));
    const tp = mine.filter((a) => bySession.get(a.session_id)?.attack);
    const firstOf = (s: ScoredSession) => mine.filter((a) => a.session_id === s.session_id);
    const tta = caught.map((s) => Math.min(...firstOf(s).map((a) => a.t)) - s.attack_start!);
    const seen = caught.flatMap((s) => {
      const ts = firstOf(s).flatMap((a) => (a.seen_us === undefined ? [] : [a.seen_us]));
      return ts.length ? [Math.min(...ts) - s.attack_start!] : [];
    });
    const recall = caught.length / injected.length;
    worstRecall = Math.min(worstRecall, recall);
    families.push({
      family,
      injected: injected.length,
      alerts: mine.length,
      precision: mine.length ? tp.length / mine.length : 1,
      recall,
      tta_s: median(tta) / 1e6,
      ...(seen.length ? { visible_s: median(seen) / 1e6 } : {}),
    });
  }
  const benign = sessions.filter((s) => !s.attack && !s.setup).length;
  const alertedBenign = new Set(alerts.filter((a) => isBenign(a.session_id)).map((a) => a.session_id)).size;
  const noisy = new Map<string, number>();
  for (const a of alerts) if (isBenign(a.session_id)) noisy.set(a.rule, (noisy.get(a.rule) ?? 0) + 1);
  return { families, benign, alertedBenign, falseShare: benign ? alertedBenign / benign : 0, worstRecall, noisy };
}

const secs = (s: number | undefined, digits: number): string => (s === undefined || Number.isNaN(s) ? '–' : `${s.toFixed(digits)} s`);

/** The markdown table and the false-alert line, as printed by `npm run eval:detect`. */
export function formatScore(s: Score, opts: { ttaLabel: string; digits?: number; visible?: boolean }): string[] {
  const d = opts.digits ?? 0;
  const lines = [
    `| detector | injected sessions | alerts | precision | recall | median time-to-alert (${opts.ttaLabel}) |${opts.visible ? ' median until readable via GET /api/alerts |' : ''}`,
    `|---|---|---|---|---|---|${opts.visible ? '---|' : ''}`,
  ];
  for (const f of s.families) {
    lines.push(`| ${f.family} | ${f.injected} | ${f.alerts} | ${f.precision.toFixed(2)} | ${f.recall.toFixed(2)} | ${secs(f.tta_s, d)} |${opts.visible ? ` ${secs(f.visible_s, 1)} |` : ''}`);
  }
  lines.push(`false alerts: ${s.alertedBenign} of ${s.benign} benign sessions (${(s.falseShare * 100).toFixed(2)}%)${s.noisy.size ? `; by rule: ${[...s.noisy].map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}`);
  return lines;
}
