/**
 * Query replay: the session's statements in order on one time axis (start offset and duration as a
 * bar), with rows, result bytes, the gateway's verdict (allowed, blocked, approved or denied and by
 * whom, masked), any error, and the stored (masked) preview of the result. Pure view of what a driver
 * delivered.
 */
import { useEffect, useRef } from 'react';
import type { Query, Session } from '../api/client.ts';
import { bytes, duration, microsBetween } from '../format.ts';

/** The statement to mark (an alert's moment): by event id, else the last one started by `at_us`. */
export function markedIndex(queries: readonly Query[], offsets: number[], mark?: { event_id?: string; at_us?: number }): number {
  if (!mark) return -1;
  if (mark.event_id) {
    const i = queries.findIndex((q) => q.event_id === mark.event_id);
    if (i >= 0) return i;
  }
  if (mark.at_us === undefined) return -1;
  let found = -1;
  offsets.forEach((o, i) => {
    if (o <= mark.at_us!) found = i;
  });
  return found;
}

export function QueryTimeline({ session, queries, mark }: { session: Session; queries: readonly Query[]; mark?: { event_id?: string; at_us?: number } }) {
  const marked = useRef<HTMLLIElement>(null);
  const offsets = queries.map((q) => Math.max(0, microsBetween(session.started_at, q.time)));
  const markAt = markedIndex(queries, offsets, mark);
  useEffect(() => {
    marked.current?.scrollIntoView({ block: 'center' });
  }, [markAt]);
  if (queries.length === 0) return <p className="muted">No statements recorded in this session.</p>;
  const end = Math.max(1, session.duration_us, ...queries.map((q, i) => offsets[i] + q.duration_us));
  return (
    <ol className="timeline" data-testid="timeline">
      {queries.map((q, i) => {
        const left = (offsets[i] / end) * 100;
        const width = Math.max(0.4, (q.duration_us / end) * 100);
        return (
          <li key={q.seq} ref={i === markAt ? marked : undefined} className={`stmt ${q.verdict}${q.error ? ' failed' : ''}${i === markAt ? ' marked' : ''}`} data-seq={q.seq} data-verdict={q.verdict} data-marked={i === markAt ? 'true' : undefined}>
            <div className="when">
              <span className="mono">+{duration(offsets[i])}</span>
              <div className="track" aria-hidden="true">
                <span className="bar" style={{ left: `${Math.min(left, 99.6)}%`, width: `${Math.min(width, 100 - Math.min(left, 99.6))}%` }} />
              </div>
            </div>
            <div className="what">
              <pre className="sql">{q.statement_known ? q.statement : '(statement defined before recording resumed)'}</pre>
              {q.params.length > 0 && <div className="params mono">params: {q.params.map((p) => (p === null ? 'NULL' : p)).join(', ')}</div>}
              {q.verdict === 'blocked' && (
                <div className="verdict-detail">
                  Blocked{q.verdict_rule ? <> by rule <b className="mono">{q.verdict_rule}</b></> : ' by the policy default'}: {q.verdict_message}
                </div>
              )}
              {(q.verdict === 'approved' || q.verdict === 'denied') && (
                <div className={`verdict-detail ${q.verdict}`} data-testid="approval">
                  {q.verdict === 'approved' ? 'Held for approval, ' : 'Held for approval, not run: '}
                  {q.verdict_message}
                </div>
              )}
              {q.masked && (
                <div className="verdict-detail masked" data-testid="masked">
                  {q.verdict === 'masked' ? q.verdict_message : 'values masked'}
                  {q.verdict_rule && q.verdict === 'masked' ? <> (rule <b className="mono">{q.verdict_rule}</b>)</> : null}
                </div>
              )}
              {q.preview.columns.length > 0 && q.preview.rows.length > 0 && (
                <table className="preview" data-testid="preview">
                  <thead>
                    <tr>{q.preview.columns.map((c, k) => <th key={k}>{c}</th>)}</tr>
                  </thead>
                  <tbody>
                    {q.preview.rows.map((row, r) => (
                      <tr key={r}>{row.map((v, k) => <td key={k} className="mono">{v === null ? 'NULL' : v}</td>)}</tr>
                    ))}
                  </tbody>
                </table>
              )}
              {q.error && q.verdict !== 'blocked' && (
                <div className="err">
                  <span className="mono">{q.sqlstate}</span> {q.error}
                </div>
              )}
            </div>
            <div className="facts">
              <span className={`tag ${q.verdict}`} data-testid="verdict">{q.verdict}</span>
              <span title="duration">{duration(q.duration_us)}</span>
              <span title="rows">{q.rows} {q.rows === 1 ? 'row' : 'rows'}</span>
              <span title="result bytes">{bytes(q.bytes)}</span>
              {q.command_tag && <span className="muted mono">{q.command_tag}</span>}
            </div>
          </li>
        );
      })}
    </ol>
  );
}
