/**
 * Drivers feed the query replay view; the view never fetches by itself. The recorded driver pages
 * through a stored session's statements; `follow()` turns it live: it subscribes to
 * GET /api/sessions/:id/queries/live (server-sent events) from the last statement it has, appends
 * what arrives in seq order and tells subscribers, reconnecting with `after_seq` after a drop so
 * nothing is missed or repeated. The view renders whatever the driver has delivered.
 */
import { ApiProblem, getSession, type Query, type Session } from '../api/client.ts';
import { currentToken } from '../auth/oidc.ts';
import { SseParser } from './sse.ts';

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
      const stop = new AbortController();
      const run = async () => {
        for (let attempt = 0; !stop.signal.aborted; attempt++) {
          const after = queries.length > 0 ? queries[queries.length - 1]!.seq : -1;
          try {
            const res = await fetch(`/api/sessions/${encodeURIComponent(sessionId)}/queries/live?after_seq=${after}`, {
              headers: { authorization: `Bearer ${currentToken() ?? ''}`, accept: 'text/event-stream' },
              signal: stop.signal,
            });
            if (!res.ok) {
              const p = (await res.json().catch(() => ({}))) as { code?: string; detail?: string };
              throw new ApiProblem(res.status, p.code ?? 'API_ERR_INTERNAL', p.detail ?? `HTTP ${res.status}`);
            }
            const reader = res.body!.getReader();
            const dec = new TextDecoder();
            const parser = new SseParser();
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              for (const m of parser.push(dec.decode(value, { stream: true }))) {
                const data = JSON.parse(m.data);
                if (m.event === 'queries') {
                  const last = queries.length > 0 ? queries[queries.length - 1]!.seq : -1;
                  const fresh = (data as { queries: Query[] }).queries.filter((q) => q.seq > last);
                  if (fresh.length > 0) {
                    queries = [...queries, ...fresh];
                    next = null; // live: everything stored so far is here
                    changed();
                  }
                } else if (m.event === 'end') {
                  if (session) session = { ...session, ended_at: session.ended_at ?? new Date().toISOString() };
                  changed();
                  return onEnd();
                } else if (m.event === 'error') throw new Error((data as { detail: string }).detail);
              }
            }
          } catch (e) {
            if (stop.signal.aborted) return;
            if (e instanceof ApiProblem && e.status < 500) return onError(e.message);
            if (attempt >= 5) return onError((e as Error).message);
          }
          await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
        }
      };
      void run();
      return () => stop.abort();
    },
  };
}
