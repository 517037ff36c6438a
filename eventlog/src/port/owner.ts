/**
 * Owner side: serves consumers of `log` to a worker over `port`. Each batch is handed to the worker
 * and the owner's consumer resolves (and so commits the offsets) only when the worker acknowledged
 * it — the end-to-end acknowledgement crosses the thread boundary unchanged.
 *
 * Producing: the worker's `send` is appended with one producer of the owner's (created on the
 * first send, closed with the bridge) and answered only once that producer resolved, i.e. once the
 * records are durable under the log's policy — so a worker that awaits its send before
 * acknowledging a batch keeps the same ordering guarantee as a producer of its own.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Consumer, EventLog, Producer } from '../types.ts';
import { LogError } from '../types.ts';
import { errorInfo, packRecords, unpackLogRecords, type ToOwner, type ToWorker } from './protocol.ts';

export function serveEventLog(log: EventLog, port: MessagePort): { close(): Promise<void> } {
  const consumers = new Map<number, Consumer>();
  const waiting = new Map<number, { resolve(): void; reject(err: Error): void }>();
  let nextBatch = 0;
  let producer: Producer | undefined;
  let closed = false;
  const post = (m: ToWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

  port.on('message', (m: ToOwner) => {
    switch (m.op) {
      case 'consume': {
        const consumer = log.consumer(m.options);
        consumers.set(m.consumer, consumer);
        consumer
          .run(async (batch) => {
            const id = nextBatch++;
            const { records, values } = packRecords(batch.records);
            const acked = new Promise<void>((resolve, reject) => waiting.set(id, { resolve, reject }));
            post({ op: 'batch', consumer: m.consumer, batch: id, topic: batch.topic, partition: batch.partition, records, values }, [values]);
            await acked;
          })
          .then(
            () => post({ op: 'running', consumer: m.consumer }),
            (err) => post({ op: 'running', consumer: m.consumer, error: errorInfo(err) }),
          );
        break;
      }
      case 'ack': {
        const w = waiting.get(m.batch);
        if (!w) break;
        waiting.delete(m.batch);
        if (m.error) w.reject(new LogError(m.error.code ?? 'LOG_ERR_PORT_HANDLER', m.error.message, m.error.retriable));
        else w.resolve();
        break;
      }
      case 'stop': {
        const consumer = consumers.get(m.consumer);
        consumers.delete(m.consumer);
        void (consumer ? consumer.stop() : Promise.resolve()).finally(() => post({ op: 'stopped', consumer: m.consumer }));
        break;
      }
      case 'send': {
        if (closed) {
          post({ op: 'done', call: m.call, error: { code: 'LOG_ERR_PORT_CLOSED', message: 'the owning thread closed the bridge', retriable: true } });
          break;
        }
        let p: Producer;
        try {
          p = producer ??= log.producer();
        } catch (err) {
          post({ op: 'done', call: m.call, error: errorInfo(err) });
          break;
        }
        p.send(m.topic, unpackLogRecords(m.records, m.values)).then(
          () => post({ op: 'done', call: m.call }),
          (err) => post({ op: 'done', call: m.call, error: errorInfo(err) }),
        );
        break;
      }
      case 'ensureTopics':
        log.ensureTopics(m.topics).then(
          () => post({ op: 'done', call: m.call }),
          (err) => post({ op: 'done', call: m.call, error: errorInfo(err) }),
        );
        break;
    }
  });

  return {
    async close() {
      // A batch in flight to a worker that is going away is not acknowledged: it stays
      // uncommitted and is delivered again on the next start.
      for (const w of waiting.values()) w.reject(new LogError('LOG_ERR_PORT_CLOSED', 'worker went away before acknowledging', true));
      waiting.clear();
      closed = true;
      await Promise.all([...consumers.values()].map((c) => c.stop()));
      consumers.clear();
      // Sends already handed to the producer finish (close flushes them); their answers may not
      // reach a worker that is gone, which is why a worker acknowledges a batch only after its sends.
      await producer?.close();
      port.close();
    },
  };
}
