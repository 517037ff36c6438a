/**
 * Worker side: an `EventLog` whose consumers and producers are served by the owning thread (see
 * owner.ts). A producer's `send` resolves once the owner's producer made the records durable, so
 * the worker can keep "publish, then acknowledge the batch" ordering across the thread boundary.
 */
import type { MessagePort } from 'node:worker_threads';
import type { BatchHandler, Consumer, ConsumerOptions, EventLog, Producer } from '../types.ts';
import { LogError } from '../types.ts';
import { errorInfo, packLogRecords, unpackRecords, type ToOwner, type ToWorker } from './protocol.ts';

export class PortEventLog implements EventLog {
  readonly kind = 'local' as const;
  private nextId = 0;
  private readonly handlers = new Map<number, (m: ToWorker) => void>();
  /** Set once the owning thread is gone: calls fail at once instead of waiting forever. */
  private gone = false;

  constructor(private readonly port: MessagePort) {
    port.on('message', (m: ToWorker) => {
      const key = 'consumer' in m ? m.consumer : m.call;
      this.handlers.get(key)?.(m);
    });
    port.on('close', () => this.abandon());
  }

  /**
   * The owner went away (its port closed, or the thread exited): every waiting call rejects with a
   * retriable LOG_ERR_PORT_CLOSED, consumers count as stopped, and later calls fail at once.
   */
  abandon(): void {
    if (this.gone) return;
    this.gone = true;
    const error = { code: 'LOG_ERR_PORT_CLOSED', message: 'the thread that owns the event log went away' };
    for (const [key, handler] of [...this.handlers]) {
      handler({ op: 'done', call: key, error: { ...error, retriable: true } });
      handler({ op: 'running', consumer: key, error });
      handler({ op: 'stopped', consumer: key });
    }
    this.handlers.clear();
  }

  private post(m: ToOwner, transfer: ArrayBuffer[] = []): void {
    this.port.postMessage(m, transfer);
  }

  /** One request answered by `done` (ensureTopics, send). */
  private call(make: (call: number) => { message: ToOwner; transfer?: ArrayBuffer[] }): Promise<void> {
    if (this.gone) return Promise.reject(new LogError('LOG_ERR_PORT_CLOSED', 'the thread that owns the event log went away', true));
    const call = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.handlers.set(call, (m) => {
        if (m.op !== 'done') return;
        this.handlers.delete(call);
        if (m.error) reject(new LogError(m.error.code ?? 'LOG_ERR_PORT', m.error.message, m.error.retriable === true));
        else resolve();
      });
      const { message, transfer } = make(call);
      this.post(message, transfer);
    });
  }

  async ensureTopics(topics: string[]): Promise<void> {
    await this.call((call) => ({ message: { op: 'ensureTopics', call, topics } }));
  }

  /** A producer whose records are appended by the owner's producer (order kept per key: one port, one owner producer). */
  producer(): Producer {
    const inFlight = new Set<Promise<void>>();
    let closed = false;
    return {
      send: (topic, records) => {
        if (closed) return Promise.reject(new LogError('LOG_ERR_PORT_USAGE', 'send() on a closed worker-side producer', false));
        if (records.length === 0) return Promise.resolve();
        const sent = this.call((call) => {
          const { records: packed, values } = packLogRecords(records);
          return { message: { op: 'send', call, topic, records: packed, values }, transfer: [values] };
        });
        inFlight.add(sent);
        const forget = () => inFlight.delete(sent);
        sent.then(forget, forget);
        return sent;
      },
      close: async () => {
        closed = true;
        await Promise.allSettled([...inFlight]);
      },
    };
  }

  consumer(options: ConsumerOptions): Consumer {
    const id = this.nextId++;
    const port = this;
    let stopped: Promise<void> | undefined;
    return {
      run(handler: BatchHandler): Promise<void> {
        if (port.gone) return Promise.reject(new LogError('LOG_ERR_PORT_CLOSED', 'the thread that owns the event log went away', false));
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
        if (port.gone) return Promise.resolve();
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
