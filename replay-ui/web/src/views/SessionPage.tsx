/** One session: its metadata, then the replay that fits its protocol (query replay for databases). */
import { useEffect, useMemo, useState } from 'react';
import { recordedQueryDriver } from '../replay/query-driver.ts';
import { QueryTimeline } from '../components/QueryTimeline.tsx';
import { bytes, duration, when } from '../format.ts';
import { linkProps } from '../router.ts';

export function SessionPage({ id }: { id: string }) {
  // Terminal sessions (SSH) will get a terminal driver and player here; databases replay queries.
  const driver = useMemo(() => recordedQueryDriver(id), [id]);
  const [, setVersion] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);

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
    return driver.subscribe?.(() => setVersion((v) => v + 1));
  }, [driver]);

  const s = driver.session();
  if (error) return <p className="error" role="alert">{error}</p>;
  if (!s) return <p className="muted">{loading ? 'Loading…' : 'No such session.'}</p>;
  const blocked = driver.queries().filter((q) => q.verdict === 'blocked').length;
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
        <dt>Database</dt><dd>{s.db_user}@{s.db_name} on {s.target_addr}</dd>
        <dt>Client</dt><dd>{s.client_app || '—'} from {s.client_addr}{s.tls ? ' (TLS)' : ''}</dd>
        <dt>Traffic</dt><dd>{bytes(s.bytes_c2s)} sent, {bytes(s.bytes_s2c)} received; {s.messages_c2s + s.messages_s2c} messages</dd>
        <dt>Statements</dt><dd>{driver.queries().length}{driver.hasMore() ? '+' : ''}{blocked ? `, ${blocked} blocked` : ''}</dd>
      </dl>
      <QueryTimeline session={s} queries={driver.queries()} />
      {driver.hasMore() && (
        <button onClick={() => driver.loadMore().then(() => setVersion((v) => v + 1), (e: Error) => setError(e.message))}>More statements</button>
      )}
    </section>
  );
}
