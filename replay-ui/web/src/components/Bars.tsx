/** Two tiny SVG/HTML charts, enough for counts over time and top-N lists: no chart library. */
import type { ReactNode } from 'react';

export interface Point {
  label: string;
  values: number[];
}

/** Stacked columns over time; `series` names each stacked value (same order as Point.values). */
export function Columns({ points, series, height = 140 }: { points: Point[]; series: string[]; height?: number }) {
  const max = Math.max(1, ...points.map((p) => p.values.reduce((a, b) => a + b, 0)));
  const w = 100 / Math.max(1, points.length);
  return (
    <figure className="columns">
      <svg viewBox={`0 0 100 ${height}`} preserveAspectRatio="none" role="img" aria-label={`${series.join(' and ')} over time`} height={height}>
        {points.map((p, i) => {
          let y = height;
          return p.values.map((v, s) => {
            const h = (v / max) * (height - 4);
            y -= h;
            return v > 0 ? (
              <rect key={`${i}-${s}`} className={`s${s}`} x={i * w + w * 0.1} width={w * 0.8} y={y} height={h}>
                <title>{`${p.label}: ${series[s]} ${v}`}</title>
              </rect>
            ) : null;
          });
        })}
      </svg>
      <figcaption>
        <span className="muted">{points[0]?.label}</span>
        <span className="legend">{series.map((s, i) => <span key={s} className={`key s${i}`}>{s}</span>)}</span>
        <span className="muted">max {max}</span>
        <span className="muted">{points[points.length - 1]?.label}</span>
      </figcaption>
    </figure>
  );
}

/** Horizontal bars for a top-N list. An empty key (e.g. a connection refused before login) shows as "(none)". */
export function HBars({ rows, title }: { rows: { key: string; value: number }[]; title: ReactNode }) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  return (
    <figure className="hbars">
      <figcaption>{title}</figcaption>
      {rows.length === 0 && <p className="muted">Nothing in this window.</p>}
      {rows.map((r) => (
        <div className="hbar" key={r.key}>
          <span className="k" title={r.key}>{r.key || <span className="muted">(none)</span>}</span>
          <span className="b"><span style={{ width: `${(r.value / max) * 100}%` }} /></span>
          <span className="v">{r.value}</span>
        </div>
      ))}
    </figure>
  );
}
