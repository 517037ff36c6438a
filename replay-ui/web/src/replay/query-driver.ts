/**
 * Drivers feed the query replay view; the view never fetches by itself. The recorded driver pages
 * through a stored session's statements. A live driver (server-sent events over the event log,
 * after the live-view work lands) implements the same interface plus `subscribe`, so the view
 * needs no change: it renders whatever the driver has delivered, in seq order.
 */
import { getSession, type Query, type Session } from '../api/client.ts';

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
}

export function recordedQueryDriver(sessionId: string): QueryDriver {
  let session: Session | null = null;
  let queries: Query[] = [];
  let next: number | null | undefined; // undefined: nothing loaded yet
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
  };
}
