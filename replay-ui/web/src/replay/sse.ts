/**
 * A server-sent events reader over fetch (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * EventSource cannot send an Authorization header, and the token must never go into a URL. Only the
 * fields the API sends are handled: `event`, `data` (joined by newlines), comments (`:`) ignored.
 */
import { ApiProblem } from '../api/client.ts';
import { currentToken } from '../auth/oidc.ts';

export interface SseMessage {
  event: string;
  data: string;
}

/** Incremental parser: push text as it arrives, get the complete messages. */
export class SseParser {
  private buf = '';

  push(text: string): SseMessage[] {
    this.buf += text.replace(/\r\n?/g, '\n');
    const out: SseMessage[] = [];
    let i: number;
    while ((i = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) out.push({ event, data: data.join('\n') });
    }
    return out;
  }
}

/**
 * Follow an SSE route with the user's token until `onMessage` returns `'done'` or the caller stops it.
 * After a dropped connection it reconnects (backing off, at most 5 tries) to `url()` — the caller
 * builds it from what it has received so far (`after_seq`), so nothing is missed or repeated. An
 * API refusal (4xx) or too many failures go to `onError`. Returns the stop function.
 */
export function followSse(url: () => string, onMessage: (m: SseMessage) => void | 'done', onError: (message: string) => void): () => void {
  const stop = new AbortController();
  const run = async () => {
    for (let attempt = 0; !stop.signal.aborted; attempt++) {
      try {
        const res = await fetch(url(), { headers: { authorization: `Bearer ${currentToken() ?? ''}`, accept: 'text/event-stream' }, signal: stop.signal });
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
            if (m.event === 'error') throw new Error((JSON.parse(m.data) as { detail: string }).detail);
            if (onMessage(m) === 'done') return;
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
}
