/**
 * Worker side: an `EventLog` whose consumers are served by the owning thread (see owner.ts).
 * Only consuming crosses the port; producing stays with the owner (a worker that needs to produce
 * should own a producer of its own).
 */
import type { MessagePort } from 'node:worker_threads';
import type { BatchHandler, Consumer, ConsumerOptions, EventLog, Producer } from '../types.ts';
import { LogError } from '../types.ts';
import { errorInfo, unpackRecords, type ToOwner, type ToWorker } from './protocol.ts';

export class PortEventLog implements EventLog {
  readonly kind = 'local' as const;
  private nextId = 0;
  private readonly handlers = new Map<number, (m: ToWorker) => void>();

  constructor(private readonly port: MessagePort) {
    port.on('message', (m: ToWorker) => {
      const key = 'consumer' in m ? m.consumer : m.call;
      this.handlers.get(key)?.(m);
    });
  }

  private post(m: ToOwner): void {
    this.port.postMessage(m);
  }

  async ensureTopics(topics: string[]): Promise<void> {
    const call = this.nextId++;
    await new Promise<void>((resolve, reject) => {
      this.handlers.set(call, (m) => {
        if (m.op !== 'done') return;
        this.handlers.delete(call);
        if (m.error) reject(new LogError(m.error.code ?? 'LOG_ERR_PORT', m.error.message, false));
        else resolve();
      });
      this.post({ op: 'ensureTopics', call, topics });
    });
  }

  producer(): Producer {
    throw new LogError('LOG_ERR_PORT_USAGE', 'a worker-side event log only consumes; produce from the owning thread', false);
  }

  consumer(options: ConsumerOptions): Consumer {
    const id = this.nextId++;
    const port = this;
    let stopped: Promise<void> | undefined;
    return {
      run(handler: BatchHandler): Promise<void> {
        return new Promise<void>((resolve, reject) => {
          port.handlers.set(id, (m) => {
            if (m.op === 'running') {
              if (m.error) reject(new LogError(m.error.code ?? 'LOG_ERR_PORT', m.error.message, false));
              else resolve();
            } else if (m.op === 'batch') {
              const records = unpackRecords(m.topic, m.partition, m.records, m.values);
              handler({ topic: m.topic, partition: m.partition, records }).then(
                () => port.post({ op: 'ack', consumer: id, batch: m.batch }),
                (err) => port.post({ op: 'ack', consumer: id, batch: m.batch, error: errorInfo(err) }),
              );
            }
          });
          port.post({ op: 'consume', consumer: id, options });
        });
      },
      stop(): Promise<void> {
        stopped ??= new Promise<void>((resolve) => {
          const prev = port.handlers.get(id);
          port.handlers.set(id, (m) => (m.op === 'stopped' ? (port.handlers.delete(id), resolve()) : prev?.(m)));
          port.post({ op: 'stop', consumer: id });
        });
        return stopped;
      },
    };
  }

  async close(): Promise<void> {
    this.port.close();
  }
}
