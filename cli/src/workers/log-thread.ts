/**
 * Starts the log thread (log-worker.ts) for a process that runs the gateway, and gives the main
 * thread its handles: the RecorderLink the gateway records through, a PortEventLog for everything
 * else on this thread (approvals, the API), and ports for other workers (ingest).
 */
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import type pino from 'pino';
import type { EventLogConfig } from '@vigil/eventlog';
import { PortEventLog } from '@vigil/eventlog/port/index';
import { RecorderLink } from '@vigil/gateway/recorder/thread/link';
import type { FromLogWorker, LogWorkerData, ToLogWorker } from './log-worker.ts';

/** The EventSink's marks on the log thread and the link's on this one (bytes not yet durable). */
const SINK = { high_water_bytes: 64 * 1024 * 1024, low_water_bytes: 16 * 1024 * 1024, retry_backoff_ms: 200 };
/**
 * A recorded frame waits at most 2 ms on the socket thread before it is handed over: one transfer
 * per 2 ms instead of one per event-loop turn keeps the hand-over off the hot path, and 2 ms is
 * well inside the log's own group commit (5 ms by default).
 */
const LINK = { flush_ms: 2, flush_bytes: 256 * 1024, high_water_bytes: 64 * 1024 * 1024, low_water_bytes: 16 * 1024 * 1024 };

export interface LogThread {
  log: PortEventLog;
  recorder: RecorderLink;
  /** The log thread's kernel thread id (Linux), for CPU placement. */
  tid: number | undefined;
  /** A port served by the log thread, to hand to another worker (it becomes that worker's log). */
  port(): MessagePort;
  stop(): Promise<void>;
}

export async function startLogThread(config: EventLogConfig, logLevel: string, logger: pino.Logger, onFatal: (why: string) => void): Promise<LogThread> {
  const recorder = new MessageChannel();
  const main = new MessageChannel();
  const workerData: LogWorkerData = { log: config, logLevel, recorderPort: recorder.port2, mainPort: main.port2, sink: SINK };
  const worker = new Worker(new URL('./log.mjs', import.meta.url), { workerData, transferList: [recorder.port2, main.port2] });
  let stopping = false;
  worker.on('error', (err) => logger.error({ err: err.message }, 'log thread failed'));
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  let tid: number | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('message', (m: FromLogWorker) => {
        if (m.op === 'started') {
          tid = m.tid;
          return resolve();
        }
        if (m.op === 'start_failed') return reject(Object.assign(new Error(m.message), { code: m.code }));
      });
      void exited.then((code) => reject(new Error(`log thread exited with ${code} during start`)));
    });
  } catch (err) {
    stopping = true;
    await worker.terminate();
    throw err;
  }
  const post = (m: ToLogWorker, transfer: MessagePort[] = []) => worker.postMessage(m, transfer);
  const link = new RecorderLink(recorder.port1, LINK);
  const log = new PortEventLog(main.port1);
  void exited.then((code) => {
    if (stopping) return;
    // Nothing on this thread may wait on the dead thread: drains resolve, calls fail at once.
    link.abandon();
    log.abandon();
    logger.fatal({ code }, 'log thread exited: shutting down (events not yet durable may be lost; the gateway refuses new sessions)');
    onFatal(`log thread exited with ${code}`);
  });
  return {
    log,
    recorder: link,
    tid,
    port() {
      const { port1, port2 } = new MessageChannel();
      post({ op: 'serve', port: port2 }, [port2]);
      return port1;
    },
    async stop() {
      stopping = true;
      // Bounded: a log that keeps failing with retriable errors must not hold shutdown forever.
      await Promise.race([link.drain(), new Promise((r) => setTimeout(r, 30_000).unref())]);
      link.close();
      const stopped = new Promise<void>((resolve) => worker.on('message', (m: FromLogWorker) => m.op === 'stopped' && resolve()));
      post({ op: 'stop' });
      await Promise.race([stopped, exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
      await log.close();
      recorder.port1.close();
      await worker.terminate();
    },
  };
}
