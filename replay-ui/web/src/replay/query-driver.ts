/**
 * Drivers feed the query replay view; the view never fetches by itself. The recorded driver pages
 * through a stored session's statements; `follow()` turns it live: it subscribes to
 * GET /api/sessions/:id/queries/live (server-sent events) from the last statement it has, appends
 * what arrives in seq order and tells subscribers, reconnecting with `after_seq` after a drop so
 * nothing is missed or repeated. The view renders whatever the driver has delivered.
 */
import { getSession, type Query, type Session } from '../api/client.ts';
import { followSse } from './sse.ts';

export interface QueryDriver {
  /** Session metadata (null until the first load). */
  session(): Session | null;
  /** Statements delivered so far, in seq order. */
  queries(): readonly Query[];
  /** Whether more stored statements can be loaded. */
  hasMore(): boolean;
  /** Load the next page; resolves when it is delivered. */
  loadMore(): Promise<void>;
  /** Optional capability of live drivers: called as statements arrive. Returns an unsubscribe. */
  subscribe?(onChange: () => void): () => void;
  /** Follow the session live from the last statement delivered; `onEnd` when it has ended. Returns a stop. */
  follow?(onEnd: () => void, onError: (message: string) => void): () => void;
}

export function recordedQueryDriver(sessionId: string): QueryDriver {
  let session: Session | null = null;
  let queries: Query[] = [];
  let next: number | null | undefined; // undefined: nothing loaded yet
  const listeners = new Set<() => void>();
  const changed = () => listeners.forEach((f) => f());
  return {
    session: () => session,
    queries: () => queries,
    hasMore: () => next === undefined || next !== null,
    async loadMore() {
      if (next === null) return;
      const page = await getSession(sessionId, next);
      session = page.session;
      queries = [...queries, ...page.queries];
      next = page.queries_next;
    },
    subscribe(onChange) {
      listeners.add(onChange);
      return () => listeners.delete(onChange);
    },
    follow(onEnd, onError) {
      const last = () => (queries.length > 0 ? queries[queries.length - 1]!.seq : -1);
      return followSse(
        () => `/api/sessions/${encodeURIComponent(sessionId)}/queries/live?after_seq=${last()}`,
        (m) => {
          if (m.event === 'queries') {
            const after = last();
            const fresh = (JSON.parse(m.data) as { queries: Query[] }).queries.filter((q) => q.seq > after);
            if (fresh.length > 0) {
              queries = [...queries, ...fresh];
              next = null; // live: everything stored so far is here
              changed();
            }
          } else if (m.event === 'end') {
            if (session) session = { ...session, ended_at: session.ended_at ?? new Date().toISOString() };
            changed();
            onEnd();
            return 'done';
          }
        },
        onError,
      );
    },
  };
}
