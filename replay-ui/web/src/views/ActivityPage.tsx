/** Activity: sessions, blocked statements and alerts over time; the busiest identities and targets, by sessions and by alerts. */
import { useEffect, useState } from 'react';
import { getActivity, type Activity } from '../api/client.ts';
import { Columns, HBars } from '../components/Bars.tsx';
import { when } from '../format.ts';

const WINDOWS = [
  { label: 'Last hour', ms: 3600_000, buckets: 60 },
  { label: 'Last 24 hours', ms: 86_400_000, buckets: 48 },
  { label: 'Last 7 days', ms: 7 * 86_400_000, buckets: 56 },
  { label: 'Last 30 days', ms: 30 * 86_400_000, buckets: 60 },
];

export function ActivityPage() {
  const [w, setW] = useState(1);
  const [data, setData] = useState<Activity | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const to = new Date();
    getActivity({ from: new Date(to.getTime() - WINDOWS[w].ms).toISOString(), to: to.toISOString(), buckets: WINDOWS[w].buckets }).then(setData, (e: Error) => setError(e.message));
  }, [w]);
  return (
    <section>
      <div className="row">
        <h1 className="title">Activity</h1>
        <select value={w} onChange={(e) => setW(Number(e.target.value))} aria-label="Window">
          {WINDOWS.map((x, i) => <option key={x.label} value={i}>{x.label}</option>)}
        </select>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {data && (
        <>
          <p className="muted">
            {when(data.from)} → {when(data.to)} UTC, one column per {data.bucket_s >= 3600 ? `${data.bucket_s / 3600} h` : `${Math.round(data.bucket_s / 60)} min`};{' '}
            {data.series.reduce((a, b) => a + b.sessions, 0)} sessions, {data.series.reduce((a, b) => a + b.blocked, 0)} blocked statements, {data.series.reduce((a, b) => a + b.alerts, 0)} alerts
          </p>
          <Columns points={data.series.map((b) => ({ label: when(b.t), values: [b.sessions, b.blocked, b.alerts] }))} series={['sessions', 'blocked', 'alerts']} />
          <div className="two">
            <HBars title="Sessions by identity" rows={data.by_identity.map((r) => ({ key: r.key, value: r.sessions }))} />
            <HBars title="Sessions by target" rows={data.by_target.map((r) => ({ key: r.key, value: r.sessions }))} />
            <HBars title="Alerts by identity" rows={data.alerts_by_identity.map((r) => ({ key: r.key, value: r.sessions }))} />
            <HBars title="Alerts by target" rows={data.alerts_by_target.map((r) => ({ key: r.key, value: r.sessions }))} />
          </div>
        </>
      )}
    </section>
  );
}
