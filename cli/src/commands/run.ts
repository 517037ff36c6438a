/**
 * Runs the selected components in this process from one validated config. `vigil start` runs all
 * three (embedded: local log + chDB + dev issuer); `vigil gateway|ingest|api` run one each
 * (distributed: Kafka + ClickHouse server). Shutdown on SIGINT/SIGTERM drains in data-flow order:
 * gateway (stop accepting, end sessions, flush events) → ingest (finish the in-flight batch) →
 * API → log → store.
 */
import pino from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { Topics, type EventLog } from '@vigil/eventlog/types';
import { createEventLog, createGatewayProducer } from '@vigil/eventlog';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { createVerifier } from '@vigil/identity/verifier';
import { openDevIssuer, type DevIssuer } from '@vigil/identity/dev-issuer';
import { EventSink } from '@vigil/gateway/recorder/index';
import { startGateway } from '@vigil/gateway';
import { startIngest } from '@vigil/ingest';
import { buildApi } from '@vigil/replay-ui/app';
import { Worker, MessageChannel } from 'node:worker_threads';
import { serveEventLog } from '@vigil/eventlog/port/index';
import type { VigilConfig } from '../config.ts';
import { VERSION } from '../version.ts';

export interface Components {
  gateway?: boolean;
  ingest?: boolean;
  api?: boolean;
}

export interface Running {
  gatewayPort?: number;
  apiUrl?: string;
  devIssuer?: DevIssuer;
  stop(): Promise<void>;
}

/** Start the components; returns handles (used by tests and by `run`). */
export async function startComponents(config: VigilConfig, which: Components): Promise<Running> {
  const logger = pino({ level: config.log_level, base: { service: 'vigil' } });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'shutdown step failed');
      }
    }
  };

  try {
    const log: EventLog = await createEventLog(config.log);
    stops.push(() => log.close());
    await log.ensureTopics([Topics.frames]);

    const devIssuer = config.dev_issuer ? await openDevIssuer(config.dev_issuer) : undefined;
    const verifier = createVerifier(config.identity);
    const running: Running = { devIssuer, stop: stopAll };

    let store: Awaited<ReturnType<typeof openStore>> | undefined;
    if (which.ingest || which.api) {
      store = await openStore(config.store);
      const s = store;
      stops.push(() => releaseStore(s));
      await applyDdl(store);
    }

    if (which.ingest && which.gateway) {
      // One process with the gateway: ingest gets its own (niced) thread, see workers/ingest-worker.ts.
      const stop = await startIngestWorker(config, log);
      stops.push(stop);
    } else if (which.ingest) {
      const ingest = await startIngest({ config: config.ingest, log, store: store!, logger: logger.child({ component: 'ingest' }) });
      stops.push(() => ingest.stop());
    }

    if (which.gateway) {
      const producer = await createGatewayProducer(config.log, log);
      const sink = new EventSink(producer, {
        topic: Topics.frames,
        high_water_bytes: 64 * 1024 * 1024,
        low_water_bytes: 16 * 1024 * 1024,
        retry_backoff_ms: 200,
      });
      sink.on('failure', (err: Error) => logger.error({ code: (err as { code?: string }).code }, 'event log write failed: new sessions are refused while fail_closed'));
      const gateway = await startGateway({
        config: config.gateway.gateway,
        targets: config.gateway.targets,
        verifier,
        sink,
        logger: logger.child({ component: 'gateway' }),
      });
      stops.push(async () => {
        await gateway.close();
        await producer.close();
      });
      running.gatewayPort = gateway.postgres.port;
      logger.info({ host: gateway.postgres.host, port: gateway.postgres.port }, 'PostgreSQL gateway listening');
    }

    if (which.api) {
      const app = await buildApi({ config: config.api, verifier, store: store!, devIssuer, logger: logger.child({ component: 'api' }), registry });
      await app.listen({ host: config.api.listen_host, port: config.api.listen_port });
      stops.push(() => app.close());
      running.apiUrl = `http://${config.api.listen_host}:${config.api.listen_port}`;
      logger.info({ url: running.apiUrl }, 'API listening');
    }
    return running;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Ingest in a worker thread consuming `log` (owned here) through a MessagePort; returns its stop. */
async function startIngestWorker(config: VigilConfig, log: EventLog): Promise<() => Promise<void>> {
  const { port1, port2 } = new MessageChannel();
  const served = serveEventLog(log, port1);
  const worker = new Worker(new URL('../workers/ingest.mjs', import.meta.url), {
    workerData: { ingest: config.ingest, store: config.store, logLevel: config.log_level, logPort: port2 },
    transferList: [port2],
  });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    worker.once('message', (m: { op: string }) => (m.op === 'started' ? resolve() : reject(new Error(`ingest worker: ${m.op}`))));
    worker.once('error', reject);
    void exited.then((code) => reject(new Error(`ingest worker exited with ${code} during start`)));
  });
  // A crash of the worker (e.g. the VIGIL_FAULT point) takes the process down with it, as an
  // in-thread ingest would: a platform that silently stopped indexing is worse than a restart.
  worker.on('error', (err) => {
    process.stderr.write(`vigil: ingest worker failed: ${err.message}\n`);
    process.exit(70);
  });
  return async () => {
    const stopped = new Promise<void>((resolve) => worker.on('message', (m: { op: string }) => m.op === 'stopped' && resolve()));
    worker.postMessage({ op: 'stop' });
    await Promise.race([stopped, exited]);
    await served.close();
    await worker.terminate();
  };
}

/** CLI entry: start, print how to connect, wait for a signal, shut down cleanly. */
export async function run(config: VigilConfig, which: Components): Promise<number> {
  const running = await startComponents(config, which);
  if (which.gateway && which.api && running.devIssuer) {
    process.stderr.write(banner(config, running));
  }
  await new Promise<void>((resolve) => {
    const onSignal = () => resolve();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  await running.stop();
  return 0;
}

function banner(config: VigilConfig, running: Running): string {
  const port = running.gatewayPort;
  return `
Vigil ${VERSION} is running (${config.mode}; config ${config.source})
  gateway (PostgreSQL)  127.0.0.1:${port}
  API                   ${running.apiUrl}
  data                  ${config.data_dir}

Try it (in another terminal):
  export PGPASSWORD=$(npx vigil token --sub alice --groups dba)
  psql "host=127.0.0.1 port=${port} user=alice dbname=local-pg" -c 'select 1'
  curl -s -H "Authorization: Bearer $(npx vigil token --sub auditor --roles analyst)" ${running.apiUrl}/api/sessions

`;
}
