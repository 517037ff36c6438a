/**
 * One session: its metadata, its alerts, then the replay that fits its protocol: the terminal
 * player for SSH, query replay for databases. `?t=<seconds>` or `?at=<ISO time>` (an alert's
 * moment) opens the replay at that instant; `?event=<event id>` marks that statement.
 */
import { lazy, Suspense, useEffect, useMemo, useState } from 'react';
import { recordedQueryDriver } from '../replay/query-driver.ts';
import { QueryTimeline } from '../components/QueryTimeline.tsx';
import { listAlerts, type Alert } from '../api/client.ts';
import { bytes, duration, microsBetween, when } from '../format.ts';
import { linkProps } from '../router.ts';

// xterm.js is most of the terminal player's weight: loaded only when an SSH session is opened.
const TerminalPlayer = lazy(() => import('../components/TerminalPlayer.tsx').then((m) => ({ default: m.TerminalPlayer })));

/** The instant asked for in the URL, as µs since the session's start. */
export function offsetOf(search: URLSearchParams, startedAt: string): number | undefined {
  const t = search.get('t');
  if (t !== null && /^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1e6);
  const at = search.get('at');
  if (at && /^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/.test(at)) return Math.max(0, microsBetween(startedAt, at));
  return undefined;
}

export function SessionPage({ id, search }: { id: string; search: URLSearchParams }) {
  const driver = useMemo(() => recordedQueryDriver(id), [id]);
  const [, setVersion] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [alerts, setAlerts] = useState<Alert[]>([]);

  useEffect(() => {
    setLoading(true);
    driver.loadMore().then(
      () => {
        setLoading(false);
        setVersion((v) => v + 1);
      },
      (e: Error) => {
        setLoading(false);
        setError(e.message);
      },
    );
    listAlerts({ session_id: id }).then((p) => setAlerts(p.items), () => setAlerts([]));
    return driver.subscribe?.(() => setVersion((v) => v + 1));
  }, [driver, id]);

  // A PostgreSQL session still open: follow its statements live (the terminal player has its own).
  const live = driver.session() !== null && !driver.session()!.ended_at && driver.session()!.protocol !== 'ssh';
  useEffect(() => {
    if (!live || !driver.follow) return;
    return driver.follow(
      () => setVersion((v) => v + 1),
      (message) => setError(message),
    );
  }, [driver, live]);

  const s = driver.session();
  if (error) return <p className="error" role="alert">{error}</p>;
  if (!s) return <p className="muted">{loading ? 'Loading…' : 'No such session.'}</p>;
  const terminal = s.protocol === 'ssh';
  const at_us = offsetOf(search, s.started_at);
  const blocked = driver.queries().filter((q) => q.verdict === 'blocked').length;
  const base = `/ui/sessions/${encodeURIComponent(s.session_id)}`;
  return (
    <section>
      <p><a {...linkProps('/ui/')}>← Sessions</a></p>
      <h1 className="title">
        {s.sub} → {s.target_id} <span className="muted">({s.protocol})</span>{' '}
        {s.ended_at ? <span className="muted small">{s.end_reason || 'ended'}</span> : <span className="tag live">live</span>}
      </h1>
      <dl className="meta" data-testid="session-meta">
        <dt>Session</dt><dd className="mono">{s.session_id}</dd>
        <dt>Started</dt><dd>{when(s.started_at)} UTC</dd>
        <dt>Duration</dt><dd>{s.ended_at ? duration(s.duration_us) : 'live'}</dd>
        <dt>Actor</dt><dd>{s.actor_kind}{s.groups.length ? ` · groups ${s.groups.join(', ')}` : ''}</dd>
        {terminal ? <><dt>Login</dt><dd>{s.db_user || '—'} on {s.target_addr}</dd></> : <><dt>Database</dt><dd>{s.db_user}@{s.db_name} on {s.target_addr}</dd></>}
        <dt>Client</dt><dd>{s.client_app || '—'} from {s.client_addr}{s.tls ? (terminal ? ' (SSH, encrypted)' : ' (TLS)') : ''}</dd>
        <dt>Traffic</dt><dd>{bytes(s.bytes_c2s)} sent, {bytes(s.bytes_s2c)} received; {s.messages_c2s + s.messages_s2c} messages</dd>
        {!terminal && <><dt>Statements</dt><dd>{driver.queries().length}{driver.hasMore() ? '+' : ''}{blocked ? `, ${blocked} blocked` : ''}</dd></>}
      </dl>
      {alerts.length > 0 && (
        <ul className="session-alerts" data-testid="session-alerts">
          {alerts.map((a) => (
            <li key={a.alert_id}>
              <span className={`tag sev-${a.severity}`}>{a.severity}</span> <a {...linkProps(`/ui/alerts/${encodeURIComponent(a.alert_id)}`)}>{a.rule}</a>: {a.summary}{' '}
              <a {...linkProps(`${base}?at=${encodeURIComponent(a.time)}${a.evidence[0] ? `&event=${encodeURIComponent(a.evidence[0])}` : ''}`)}>at +{duration(Math.max(0, microsBetween(s.started_at, a.time)))}</a>
            </li>
          ))}
        </ul>
      )}
      {terminal ? (
        <Suspense fallback={<p className="muted">Loading the player…</p>}>
          <TerminalPlayer sessionId={s.session_id} at_us={at_us} />
        </Suspense>
      ) : (
        <>
          <QueryTimeline session={s} queries={driver.queries()} mark={{ event_id: search.get('event') ?? undefined, at_us }} />
          {driver.hasMore() && (
            <button onClick={() => driver.loadMore().then(() => setVersion((v) => v + 1), (e: Error) => setError(e.message))}>More statements</button>
          )}
        </>
      )}
    </section>
  );
}
