/**
 * Ingest in its own thread (`vigil start`): decoding frames and writing ClickHouse rows is CPU
 * work that would otherwise share the gateway's event loop and add latency to every proxied
 * message. The thread gets a nice value so that, under load, the data path wins and indexing
 * catches up from the durable log afterwards.
 *
 * The log stays owned by the main thread; this thread consumes it through a MessagePort
 * (eventlog/src/port), with the same commit-after-ClickHouse-ack contract, and produces to it
 * through the same port (alerts on vigil.alerts.v1, OCSF on vigil.ocsf.v1, appended by the main
 * thread's producer before the batch is acknowledged). The chDB engine is process-wide, so this
 * thread and the API in the main thread share one store.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { setPriority } from 'node:os';
import { nameThread, threadId, runUtil } from './os-thread.ts';
import pino from 'pino';
import { PortEventLog } from '@vigil/eventlog/port/index';
import { openStore, applyDdl, releaseStore, type StoreConfig } from '@vigil/ingest/store/client';
import { startIngest, type IngestConfig } from '@vigil/ingest';
import { VERSION } from '../version.ts';

export interface IngestWorkerData {
  ingest: IngestConfig;
  store: StoreConfig;
  logLevel: string;
  logPort: MessagePort;
}

nameThread('vigil-ingest');
const data = workerData as IngestWorkerData;
const logger = pino({ level: data.logLevel, base: { service: 'vigil', component: 'ingest' } });
try {
  // pid 0 = the calling thread on Linux: only this thread is deprioritised.
  setPriority(0, data.ingest.thread_nice);
} catch (err) {
  logger.warn({ err: (err as Error).message }, 'could not lower the ingest thread priority');
}
if (data.ingest.thread_policy === 'idle') setIdlePolicy();

/**
 * SCHED_IDLE for this thread (and the threads it starts later, e.g. the store's). Node has no
 * sched_setscheduler binding; util-linux's chrt sets it for one thread id.
 * Failing that (not Linux, no chrt) the nice value above still applies.
 */
function setIdlePolicy(): void {
  try {
    const tid = threadId();
    if (tid === undefined) throw new Error('thread id unknown (not Linux)');
    runUtil('chrt', ['--idle', '--pid', '0', String(tid)]);
    logger.debug({ tid }, 'ingest thread runs at SCHED_IDLE');
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not set SCHED_IDLE on the ingest thread; it keeps its nice value');
  }
}

const log = new PortEventLog(data.logPort);
const store = await openStore(data.store);
await applyDdl(store);
const ingest = await startIngest({ config: data.ingest, log, store, logger, product_version: VERSION });
parentPort!.postMessage({ op: 'started' });

parentPort!.on('message', async (m: { op: string; busy?: boolean }) => {
  if (m.op === 'gateway_load') return ingest.setGatewayBusy(m.busy === true);
  if (m.op !== 'stop') return;
  try {
    await ingest.stop();
    await releaseStore(store);
    await log.close();
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'ingest worker stop failed');
  } finally {
    parentPort!.postMessage({ op: 'stopped' });
  }
});
