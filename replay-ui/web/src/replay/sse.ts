/**
 * A server-sent events reader over fetch (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * EventSource cannot send an Authorization header, and the token must never go into a URL. Only the
 * fields the API sends are handled: `event`, `data` (joined by newlines), comments (`:`) ignored.
 */
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
