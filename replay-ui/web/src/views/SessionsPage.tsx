/**
 * Sessions: filters (identity, agent/human, target, protocol, time range, live, has alerts) and a
 * search over statements and commands answered by the API (ClickHouse). The filters live in the URL, so a search can be shared
 * and the back button works.
 */
import { useEffect, useState, type FormEvent } from 'react';
import { listSessions, type Session, type SessionFilters } from '../api/client.ts';
import { linkProps, navigate } from '../router.ts';
import { bytes, duration, when } from '../format.ts';

const KEYS = ['q', 'sub', 'actor_kind', 'target_id', 'protocol', 'live', 'has_alerts', 'from', 'to'] as const;

function filtersOf(search: URLSearchParams): SessionFilters {
  const f: Record<string, string> = {};
  for (const k of KEYS) {
    const v = search.get(k);
    if (v) f[k] = v;
  }
  return f as SessionFilters;
}

/** datetime-local (the browser's local time) ↔ ISO-8601 UTC for the API. */
const toIso = (local: string) => (local ? new Date(local).toISOString() : '');
const toLocal = (iso: string | undefined) => {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

export function SessionsPage({ search }: { search: URLSearchParams }) {
  const filters = filtersOf(search);
  const key = JSON.stringify(filters);
  const [items, setItems] = useState<Session[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stale = false;
    setLoading(true);
    setError(null);
    listSessions(filters).then(
      (page) => {
        if (stale) return;
        setItems(page.items);
        setCursor(page.next_cursor);
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

  const more = async () => {
    if (!cursor) return;
    const page = await listSessions(filters, cursor);
    setItems((old) => [...old, ...page.items]);
    setCursor(page.next_cursor);
  };

  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget);
    const p = new URLSearchParams();
    for (const k of KEYS) {
      let v = String(data.get(k) ?? '').trim();
      if (k === 'from' || k === 'to') v = toIso(v);
      if (v) p.set(k, v);
    }
    navigate(`/ui/${p.size ? `?${p}` : ''}`);
  };

  return (
    <section>
      <form className="filters" onSubmit={submit} key={key}>
        <input className="search" name="q" type="search" placeholder="Search statements and commands (e.g. DROP TABLE, invoices, rm -rf)" defaultValue={filters.q} aria-label="Search statements" />
        <input name="sub" placeholder="Identity" defaultValue={filters.sub} aria-label="Identity" />
        <select name="actor_kind" defaultValue={filters.actor_kind ?? ''} aria-label="Agent or human">
          <option value="">Agents and humans</option>
          <option value="agent">Agents</option>
          <option value="human">Humans</option>
        </select>
        <input name="target_id" placeholder="Target" defaultValue={filters.target_id} aria-label="Target" />
        <select name="protocol" defaultValue={filters.protocol ?? ''} aria-label="Protocol">
          <option value="">Any protocol</option>
          <option value="postgres">PostgreSQL</option>
          <option value="mysql">MySQL</option>
          <option value="ssh">SSH</option>
          <option value="http">HTTP</option>
        </select>
        <select name="live" defaultValue={filters.live ?? ''} aria-label="Live or ended">
          <option value="">Live and ended</option>
          <option value="true">Live</option>
          <option value="false">Ended</option>
        </select>
        <select name="has_alerts" defaultValue={filters.has_alerts ?? ''} aria-label="Alerts">
          <option value="">With or without alerts</option>
          <option value="true">Has alerts</option>
          <option value="false">No alerts</option>
        </select>
        <label>From <input name="from" type="datetime-local" defaultValue={toLocal(filters.from)} /></label>
        <label>To <input name="to" type="datetime-local" defaultValue={toLocal(filters.to)} /></label>
        <button type="submit">Search</button>
        {search.size > 0 && <a {...linkProps('/ui/')}>Clear</a>}
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      <table className="sessions" data-testid="sessions">
        <thead>
          <tr>
            <th>Started (UTC)</th>
            <th>Identity</th>
            <th>Kind</th>
            <th>Target</th>
            <th>Protocol</th>
            <th>As</th>
            <th>Client</th>
            <th className="num">Duration</th>
            <th className="num">Bytes ↑/↓</th>
            <th>State</th>
          </tr>
        </thead>
        <tbody>
          {items.map((s) => (
            <tr key={s.session_id} data-session-id={s.session_id} onClick={() => navigate(`/ui/sessions/${encodeURIComponent(s.session_id)}`)}>
              <td><a {...linkProps(`/ui/sessions/${encodeURIComponent(s.session_id)}`)}>{when(s.started_at)}</a></td>
              <td>{s.sub}</td>
              <td><span className={`tag ${s.actor_kind}`}>{s.actor_kind}</span></td>
              <td>{s.target_id}</td>
              <td>{s.protocol}</td>
              <td>{s.db_user}{s.db_name ? `@${s.db_name}` : ''}</td>
              <td>{s.client_app}</td>
              <td className="num">{s.ended_at ? duration(s.duration_us) : '—'}</td>
              <td className="num">{bytes(s.bytes_c2s)} / {bytes(s.bytes_s2c)}</td>
              <td>{s.ended_at ? <span className="muted">{s.end_reason || 'ended'}</span> : <span className="tag live">live</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && items.length === 0 && !error && <p className="muted">No session matches.</p>}
      {loading && <p className="muted">Loading…</p>}
      {cursor && <button onClick={more}>Older sessions</button>}
    </section>
  );
}
