/**
 * The log thread (any process that runs the gateway): it owns the event log and the gateway's
 * recorder. The socket thread hands it raw frames in batches (gateway/src/recorder/thread); here
 * they are sealed into their sessions' hash chains and appended, with the log's own work (record
 * encoding, CRC, group-commit fsync, Kafka batching) — none of it on the thread that forwards
 * client bytes. Everything else in the process that reads or writes the log (approvals, the API's
 * audit chain, ingest's worker) does it through MessagePorts served here (eventlog/src/port).
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import pino from 'pino';
import { createEventLog, createGatewayProducer, type EventLogConfig } from '@vigil/eventlog';
import { Topics, type EventLog } from '@vigil/eventlog/types';
import { serveEventLog } from '@vigil/eventlog/port/index';
import { EventSink } from '@vigil/gateway/recorder/index';
import { serveRecorder } from '@vigil/gateway/recorder/thread/host';
import { nameThread, threadId } from './os-thread.ts';

export interface LogWorkerData {
  log: EventLogConfig;
  logLevel: string;
  recorderPort: MessagePort;
  mainPort: MessagePort;
  sink: { high_water_bytes: number; low_water_bytes: number; retry_backoff_ms: number };
}

export type ToLogWorker = { op: 'serve'; port: MessagePort } | { op: 'stop' };
export type FromLogWorker = { op: 'started'; tid?: number } | { op: 'start_failed'; code?: string; message: string } | { op: 'stopped' };

nameThread('vigil-log');
const data = workerData as LogWorkerData;
const logger = pino({ level: data.logLevel, base: { service: 'vigil', component: 'log' } });
const post = (m: FromLogWorker) => parentPort!.postMessage(m);

let opened: EventLog | undefined;
try {
  const log = (opened = await createEventLog(data.log));
  await log.ensureTopics([Topics.frames]);
  const producer = await createGatewayProducer(data.log, log);
  const sink = new EventSink(producer, { topic: Topics.frames, ...data.sink });
  const recorder = serveRecorder(data.recorderPort, sink, logger);
  const served = [serveEventLog(log, data.mainPort)];
  parentPort!.on('message', async (m: ToLogWorker) => {
    if (m.op === 'serve') {
      served.push(serveEventLog(log, m.port));
      return;
    }
    try {
      // The gateway drained the recorder before asking: this flushes anything still batched,
      // then closes every bridge (their consumers commit what was acknowledged) and the log.
      await sink.drain();
      recorder.close();
      await Promise.all(served.map((s) => s.close()));
      await producer.close();
      await log.close();
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'log thread stop failed');
    } finally {
      post({ op: 'stopped' });
    }
  });
  post({ op: 'started', tid: threadId() });
} catch (err) {
  // Release what was opened (a local log's lock, a Kafka client) before reporting.
  await opened?.close().catch(() => {});
  post({ op: 'start_failed', code: (err as { code?: string }).code, message: (err as Error).message });
}
