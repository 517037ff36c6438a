/**
 * Detection alerts (GET /api/alerts): a list filtered by severity, rule and identity (kept in the
 * URL), and one alert's detail: what the detector saw (summary, facts, evidence event ids) with a
 * link that opens the session's replay at the alert's moment (`?at=`, and `&event=` to mark the
 * statement it names).
 */
import { useEffect, useState, type FormEvent } from 'react';
import { listAlerts, type Alert, type AlertFilters } from '../api/client.ts';
import { linkProps, navigate } from '../router.ts';
import { when } from '../format.ts';

const KEYS = ['min_severity', 'rule', 'sub', 'target_id'] as const;

export function replayLink(a: Alert): string {
  const q = new URLSearchParams({ at: a.time });
  if (a.evidence[0]) q.set('event', a.evidence[0]);
  return `/ui/sessions/${encodeURIComponent(a.session_id)}?${q}`;
}

export function AlertsPage({ search }: { search: URLSearchParams }) {
  const filters: AlertFilters = {};
  for (const k of KEYS) {
    const v = search.get(k);
    if (v) filters[k] = v;
  }
  const key = JSON.stringify(filters);
  const [items, setItems] = useState<Alert[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stale = false;
    setLoading(true);
    setError(null);
    listAlerts(filters).then(
      (p) => {
        if (stale) return;
        setItems(p.items);
        setNext(p.next);
        setLoading(false);
      },
      (e: Error) => {
        if (stale) return;
        setError(e.message);
        setLoading(false);
      },
    );
    return () => {
      stale = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget);
    const p = new URLSearchParams();
    for (const k of KEYS) {
      const v = String(data.get(k) ?? '').trim();
      if (v) p.set(k, v);
    }
    navigate(`/ui/alerts${p.size ? `?${p}` : ''}`);
  };

  return (
    <section>
      <form className="filters" onSubmit={submit} key={key}>
        <select name="min_severity" defaultValue={filters.min_severity ?? ''} aria-label="Minimum severity">
          <option value="">Any severity</option>
          <option value="medium">Medium and above</option>
          <option value="high">High and above</option>
          <option value="critical">Critical</option>
        </select>
        <input name="rule" placeholder="Rule (e.g. bulk_read.*)" defaultValue={filters.rule} aria-label="Rule" />
        <input name="sub" placeholder="Identity" defaultValue={filters.sub} aria-label="Identity" />
        <input name="target_id" placeholder="Target" defaultValue={filters.target_id} aria-label="Target" />
        <button type="submit">Filter</button>
        {search.size > 0 && <a {...linkProps('/ui/alerts')}>Clear</a>}
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      <table className="alerts" data-testid="alerts">
        <thead>
          <tr><th>Time (UTC)</th><th>Severity</th><th>Rule</th><th>Identity</th><th>Target</th><th>Summary</th><th>Replay</th></tr>
        </thead>
        <tbody>
          {items.map((a) => (
            <tr key={a.alert_id} data-alert-id={a.alert_id} onClick={() => navigate(`/ui/alerts/${encodeURIComponent(a.alert_id)}`)}>
              <td><a {...linkProps(`/ui/alerts/${encodeURIComponent(a.alert_id)}`)}>{when(a.time)}</a></td>
              <td><span className={`tag sev-${a.severity}`}>{a.severity}</span></td>
              <td className="mono">{a.rule}</td>
              <td>{a.sub}</td>
              <td>{a.target_id}</td>
              <td>{a.summary}</td>
              <td onClick={(e) => e.stopPropagation()}><a {...linkProps(replayLink(a))}>at the moment →</a></td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && items.length === 0 && !error && <p className="muted">No alert matches.</p>}
      {loading && <p className="muted">Loading…</p>}
      {next && (
        <button
          onClick={() =>
            listAlerts(filters, next).then((p) => {
              setItems((old) => [...old, ...p.items]);
              setNext(p.next);
            }, (e: Error) => setError(e.message))
          }
        >
          Older alerts
        </button>
      )}
    </section>
  );
}

export function AlertPage({ id }: { id: string }) {
  const [alert, setAlert] = useState<Alert | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    listAlerts({ alert_id: id }).then((p) => setAlert(p.items[0] ?? null), (e: Error) => setError(e.message));
  }, [id]);
  if (error) return <p className="error" role="alert">{error}</p>;
  if (alert === undefined) return <p className="muted">Loading…</p>;
  if (alert === null) return <p className="muted">No such alert. <a {...linkProps('/ui/alerts')}>Alerts</a></p>;
  return (
    <section data-testid="alert-detail">
      <p><a {...linkProps('/ui/alerts')}>← Alerts</a></p>
      <h1 className="title">
        <span className={`tag sev-${alert.severity}`}>{alert.severity}</span> <span className="mono">{alert.rule}</span>
      </h1>
      <p>{alert.summary}</p>
      <dl className="meta">
        <dt>When</dt><dd>{when(alert.time)} UTC</dd>
        <dt>Identity</dt><dd>{alert.sub}{alert.groups.length ? ` · groups ${alert.groups.join(', ')}` : ''}</dd>
        <dt>Target</dt><dd>{alert.target_id}</dd>
        <dt>Session</dt><dd><a {...linkProps(`/ui/sessions/${encodeURIComponent(alert.session_id)}`)} className="mono">{alert.session_id}</a></dd>
        <dt>Alert id</dt><dd className="mono">{alert.alert_id}</dd>
      </dl>
      <p><a className="button" {...linkProps(replayLink(alert))}>Open the replay at this moment →</a></p>
      <h2 className="small muted">Facts</h2>
      <table className="alerts facts-table">
        <tbody>
          {Object.entries(alert.facts).map(([k, v]) => (
            <tr key={k}><td className="mono">{k}</td><td>{String(v)}</td></tr>
          ))}
        </tbody>
      </table>
      <h2 className="small muted">Evidence (event ids)</h2>
      <ul className="mono small">{alert.evidence.map((e) => <li key={e}>{e}</li>)}</ul>
    </section>
  );
}
