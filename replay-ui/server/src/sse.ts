/**
 * Server-sent events for the live views (terminal and statements): message framing, the reply, and
 * the poll wait that ends early when the client goes away.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** One SSE message: `event` and a JSON `data` line. */
export const sseMessage = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** Wait `ms`, or less if `signal` aborts (the client closed the stream). */
export const sseWait = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/** Send the stream made by `produce` (given a signal that aborts when the client disconnects). */
export function sseReply(request: FastifyRequest, reply: FastifyReply, produce: (stop: AbortSignal) => AsyncGenerator<string>): FastifyReply {
  const stop = new AbortController();
  request.raw.once('close', () => stop.abort());
  reply.header('content-type', 'text/event-stream; charset=utf-8');
  reply.header('cache-control', 'no-store');
  reply.header('x-accel-buffering', 'no'); // no proxy buffering of a live stream
  return reply.send(Readable.from(produce(stop.signal)));
}
