/**
 * Runs the selected components in this process from one validated config. `vigil start` runs all
 * three (embedded: local log + chDB + dev issuer); `vigil gateway|ingest|api` run one each
 * (distributed: Kafka + ClickHouse server). Shutdown on SIGINT/SIGTERM drains in data-flow order:
 * gateway (stop accepting, end sessions, flush events) → ingest (finish the in-flight batch) →
 * API → log → store.
 */
import pino from 'pino';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { nativeSealer } from '@vigil/schemas/native';
import { Topics, type EventLog } from '@vigil/eventlog/types';
import { createEventLog } from '@vigil/eventlog';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { createVerifier } from '@vigil/identity/verifier';
import { openDevIssuer, type DevIssuer } from '@vigil/identity/dev-issuer';
import { startGateway, ApprovalBroker } from '@vigil/gateway';
import { startIngest } from '@vigil/ingest';
import { startSiemSinks } from '@vigil/ingest/siem/index';
import { buildApi } from '@vigil/replay-ui/app';
import { ApprovalBook } from '@vigil/replay-ui/approvals-book';
import { createAccessAudit } from '@vigil/replay-ui/access-audit';
import { openLocalAdmin, type LocalAdmin } from '@vigil/replay-ui/login/local-admin';
import { ensureBuilt } from '@vigil/replay-ui/web/build';
import { Worker, type MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { startLogThread, type LogThread } from '../workers/log-thread.ts';
import { plan, pin, affinityOf } from '../workers/affinity.ts';
import type { VigilConfig } from '../config.ts';
import { VERSION } from '../version.ts';

export interface Components {
  gateway?: boolean;
  ingest?: boolean;
  api?: boolean;
}

export interface Running {
  /** Set by run(): called when a component fails in a way that needs a clean shutdown and restart. */
  fatal?: (why: string) => void;
  gatewayPort?: number;
  /** The SSH listener's port, when gateway.ssh is configured. */
  sshPort?: number;
  apiUrl?: string;
  devIssuer?: DevIssuer;
  /** Stop everything; false when a step failed or did not finish in time (see stopAll). */
  stop(): Promise<boolean>;
}

/**
 * Longest one shutdown step may take (VIGIL_SHUTDOWN_STEP_MS; tests shorten it). The slowest
 * regular steps are bounded below it: the log thread's stop at 30 s, ingest's at 15 s.
 */
function shutdownStepMs(): number {
  const v = Number(process.env.VIGIL_SHUTDOWN_STEP_MS);
  return Number.isFinite(v) && v > 0 ? v : 45_000;
}

/**
 * Fault injection for the shutdown's bound (off unless VIGIL_FAULT is `shutdown.hang:<step>`):
 * that step never finishes.
 */
function faultyStep(name: string, run: () => Promise<void>): Promise<void> {
  if (process.env.VIGIL_FAULT === `shutdown.hang:${name}`) return new Promise(() => {});
  return run();
}

/** Start the components; returns handles (used by tests and by `run`). */
export async function startComponents(config: VigilConfig, which: Components): Promise<Running> {
  const logger = pino({ level: config.log_level, base: { service: 'vigil' } });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Shutdown steps, run in reverse order of start. Each is bounded: a step that does not finish
  // (a store call wedged by a thread that died inside it, say) is logged by name and passed, so a
  // process that must restart does restart; the run then exits non-zero.
  const stops: { name: string; run: () => Promise<void> }[] = [];
  const step = (name: string, run: () => Promise<void>) => stops.push({ name, run: () => faultyStep(name, run) });
  const stopAll = async () => {
    let complete = true;
    for (const { name, run } of stops.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      try {
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), shutdownStepMs())));
        if ((await Promise.race([run(), late])) === 'late') {
          complete = false;
          logger.error({ step: name, limit_ms: shutdownStepMs() }, 'shutdown step did not finish in time; going on without it');
        }
      } catch (err) {
        complete = false;
        logger.error({ step: name, err: (err as Error).message }, 'shutdown step failed');
      } finally {
        clearTimeout(timer);
      }
    }
    return complete;
  };

  // Declared first: a thread that dies during start reports through running.fatal.
  const running: Running = { stop: stopAll };
  try {
    // With the gateway in this process the log lives on its own thread, beside the recorder that
    // seals frames (workers/log-worker.ts); this thread reaches it through a port.
    let log: EventLog;
    const logThread = which.gateway ? await startLogThread(config.log, config.log_level, logger.child({ component: 'log-supervisor' }), (why) => running.fatal?.(why)) : undefined;
    if (logThread) {
      log = logThread.log;
      step('log thread', () => logThread.stop());
    } else {
      const own = await createEventLog(config.log);
      log = own;
      step('event log', () => own.close());
    }
    await log.ensureTopics([Topics.frames]);

    const devIssuer = config.dev_issuer ? await openDevIssuer(config.dev_issuer) : undefined;
    running.devIssuer = devIssuer;
    const verifier = createVerifier(config.identity);

    let store: Awaited<ReturnType<typeof openStore>> | undefined;
    if (which.ingest || which.api) {
      store = await openStore(config.store);
      const s = store;
      step('store', () => releaseStore(s));
      await applyDdl(store);
    }

    if (which.ingest && which.gateway) {
      // One process with the gateway: ingest gets its own (niced) thread, see workers/ingest-worker.ts.
      const stop = await startIngestWorker(config, logThread!.port(), logger.child({ component: 'ingest-supervisor' }), (why) => running.fatal?.(why));
      step('ingest thread', stop);
    } else if (which.ingest) {
      const ingest = await startIngest({ config: config.ingest, log, store: store!, logger: logger.child({ component: 'ingest' }), product_version: VERSION });
      step('ingest', () => ingest.stop());
    }
    if (which.ingest && config.ingest.siem.sinks.length > 0) {
      // SIEM sinks consume vigil.ocsf.v1 on the log this process owns (docs/siem.md).
      const stopSinks = await startSiemSinks(config.ingest.siem, log, logger.child({ component: 'siem' }), VERSION);
      step('siem sinks', stopSinks);
    }

    if (which.gateway) {
      // Which frame sealer the log thread uses (same files, same answer there): the JS one is a
      // correct fallback that costs more CPU per frame, so say so where an operator looks.
      if (nativeSealer.addon) logger.info({ sealer: 'native' }, 'frame sealer');
      else logger.warn({ sealer: 'js', reason: nativeSealer.reason }, 'frame sealer: the native sealer is not in use; frames are sealed in JS (same bytes, more CPU per frame)');
      new Gauge({ name: 'vigil_gateway_native_sealer', help: '1 when frames are sealed by the native sealer, 0 when by the JS fallback', registers: [registry] }).set(nativeSealer.addon ? 1 : 0);
      // Frames are sealed and appended on the log thread; approval mirrors go through this thread's port.
      const producer = log.producer();
      const sink = logThread!.recorder;
      sink.on('failure', (err: Error) => logger.error({ code: (err as { code?: string }).code }, 'event log write failed: new sessions are refused while fail_closed'));
      // Holds for just-in-time approval read decisions from the control topic (any API process may publish them).
      const approvals = await ApprovalBroker.start({ log, producer, gatewayId: config.gateway.gateway.id, logger: logger.child({ component: 'approvals' }) });
      const gateway = await startGateway({
        config: config.gateway.gateway,
        targets: config.gateway.targets,
        ssh_targets: config.gateway.ssh_targets,
        verifier,
        sink,
        logger: logger.child({ component: 'gateway' }),
        approvals,
      }).catch(async (err: unknown) => {
        await approvals.close();
        throw err;
      });
      step('gateway', async () => {
        await gateway.close(); // sessions still waiting record their outcome (closed) and mirror it
        await approvals.close();
        await producer.close();
      });
      // The gateway logs its own listeners ('pg gateway listening', 'ssh gateway listening').
      running.gatewayPort = gateway.postgres.port;
      if (gateway.ssh) running.sshPort = gateway.ssh.port;
    }

    if (which.api) {
      const book = await ApprovalBook.open(log);
      step('approvals book', () => book.close());
      // Access audit: recording.viewed in the API's own chain, on the log the gateway writes to.
      const auditProducer = log.producer();
      const audit = createAccessAudit(auditProducer, { version: VERSION });
      step('access audit', async () => {
        await audit.close();
        await auditProducer.close();
      });
      const ui = config.api.ui.enabled ? await prepareUi(config, devIssuer, logger.child({ component: 'ui' })) : {};
      const app = await buildApi({
        config: config.api,
        verifier,
        store: store!,
        devIssuer,
        logger: logger.child({ component: 'api' }),
        registry,
        approvals: book,
        audit,
        ...ui,
        uiIssuer: config.identity.issuer,
        audience: config.identity.audience,
      });
      await app.listen({ host: config.api.listen_host, port: config.api.listen_port });
      step('api', () => app.close());
      running.apiUrl = `http://${config.api.listen_host}:${config.api.listen_port}`;
      logger.info({ url: running.apiUrl }, 'API listening');
      if (ui.uiDir) logger.info({ url: `${running.apiUrl}/ui/` }, 'web UI');
    }
    // Last: every thread exists by now, so none inherits the socket thread's pin.
    const affinity = config.gateway.gateway.cpu_affinity ?? (config.mode === 'embedded' ? 'auto' : 'off');
    if (logThread && affinity === 'auto') placeHotThreads(logThread, logger);
    return running;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** gateway.cpu_affinity auto (the embedded default) — the socket thread (this one) and the log thread on CPUs of their own. */
function placeHotThreads(logThread: LogThread, logger: pino.Logger): void {
  const where = plan(affinityOf(process.pid));
  if ('skipped' in where) return logger.info({ reason: where.skipped }, 'gateway threads not pinned');
  try {
    if (logThread.tid === undefined) throw new Error('log thread id unknown');
    pin(process.pid, where.socket_cpu); // the main thread's id is the process id
    pin(logThread.tid, where.log_cpu);
    logger.info({ ...where, log_thread_id: logThread.tid }, 'gateway threads pinned (gateway.cpu_affinity: auto)');
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not pin the gateway threads (gateway.cpu_affinity); the scheduler places them');
  }
}

/**
 * The web UI for the API: its build (rebuilt only when replay-ui/web changed since the last build;
 * `npm install` builds it first) and, with the dev issuer, the local admin account. The admin
 * password is created on the first start and printed here once, to stderr, not to the log.
 * A UI that cannot be built leaves the API running without it: the audit API matters more.
 */
async function prepareUi(config: VigilConfig, devIssuer: DevIssuer | undefined, logger: pino.Logger): Promise<{ uiDir?: string; localAdmin?: LocalAdmin }> {
  let uiDir: string | undefined;
  try {
    uiDir = await ensureBuilt({ log: (line) => logger.info(line) });
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'the web UI could not be built (run `npm run build:ui`); serving the API without it');
  }
  if (!devIssuer || !config.dev_issuer) return { uiDir };
  const localAdmin = await openLocalAdmin({ dir: config.dev_issuer.dir });
  if (localAdmin.createdPassword) {
    process.stderr.write(
      `\nVigil web UI: local sign-in created. User: ${localAdmin.user}  Password: ${localAdmin.createdPassword}\n` +
        `  Shown this once; only its hash is kept (${config.dev_issuer.dir}/ui-admin.scrypt.json; delete it to get a new one).\n\n`,
    );
  }
  return { uiDir, localAdmin };
}

/**
 * Ingest in a worker thread consuming `log` (owned here) through a MessagePort. Returns its stop.
 *
 * If the worker dies, the process shuts down cleanly (gateway drained, every accepted event made
 * durable) and exits non-zero for its service manager to restart — crash-only, not an in-process
 * restart: a thread that died inside the chDB engine can leave the process-wide engine unusable
 * (observed: the API's queries then hang), and the unacknowledged batch is redelivered after the
 * restart anyway.
 */
async function startIngestWorker(config: VigilConfig, logPort: MessagePort, logger: pino.Logger, onFatal: (why: string) => void): Promise<() => Promise<void>> {
  let stopping = false;
  const worker = new Worker(new URL('../workers/ingest.mjs', import.meta.url), {
    workerData: { ingest: config.ingest, store: config.store, logLevel: config.log_level, logPort },
    transferList: [logPort],
  });
  worker.on('error', (err) => logger.error({ err: err.message }, 'ingest worker failed'));
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    worker.once('message', (m: { op: string }) => (m.op === 'started' ? resolve() : reject(new Error(`ingest worker: ${m.op}`))));
    void exited.then((code) => reject(new Error(`ingest worker exited with ${code} during start`)));
  });
  // The gateway's load, as ingest's deferral sees it (ingest.yield_to_gateway): this thread's
  // event-loop utilisation over the last 250 ms. Only changes are posted.
  const threshold = config.ingest.yield_to_gateway.busy_utilization;
  let elu = performance.eventLoopUtilization();
  let busy = false;
  const sampler = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const on = performance.eventLoopUtilization(now, elu).utilization >= threshold;
    elu = now;
    if (on !== busy) worker.postMessage({ op: 'gateway_load', busy: (busy = on) });
  }, 250).unref();
  void exited.then(async (code) => {
    clearInterval(sampler);
    // Its bridge on the log thread closes with the log: the in-flight batch stays uncommitted and
    // is redelivered on the next start.
    if (stopping) return;
    logger.fatal({ code }, 'ingest worker exited: shutting down cleanly for a restart (recorded events are safe in the log)');
    onFatal(`ingest worker exited with ${code}`);
  });
  return async () => {
    stopping = true;
    clearInterval(sampler);
    const stopped = new Promise<void>((resolve) => worker.on('message', (m: { op: string }) => m.op === 'stopped' && resolve()));
    worker.postMessage({ op: 'stop' });
    // Bounded: a worker stuck in a store retry must not hold shutdown forever (its batch is redelivered).
    await Promise.race([stopped, exited, new Promise((r) => setTimeout(r, 15_000).unref())]);
    await worker.terminate();
  };
}

/** CLI entry: start, print how to connect, wait for a signal, shut down cleanly. */
export async function run(config: VigilConfig, which: Components): Promise<number> {
  const running = await startComponents(config, which);
  if (which.gateway && which.api && running.devIssuer) {
    process.stderr.write(banner(config, running));
  }
  let failure: string | undefined;
  await new Promise<void>((resolve) => {
    const onSignal = () => resolve();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    running.fatal = (why) => {
      failure = why;
      resolve();
    };
  });
  const complete = await running.stop();
  if (failure) {
    process.stderr.write(`vigil: stopped after a fatal error (${failure}); restart to resume\n`);
    return 70; // EX_SOFTWARE
  }
  if (!complete) {
    process.stderr.write('vigil: stopped, but not every shutdown step finished (see the log); events not yet durable may be lost\n');
    return 70;
  }
  return 0;
}

function banner(config: VigilConfig, running: Running): string {
  const port = running.gatewayPort;
  return `
Vigil ${VERSION} is running (${config.mode}; config ${config.source})
  gateway (PostgreSQL)  127.0.0.1:${port}${running.sshPort ? `\n  gateway (SSH)         127.0.0.1:${running.sshPort}  (ssh -p ${running.sshPort} <sub>@<target>@127.0.0.1, token as password)` : ''}
  API                   ${running.apiUrl}
  web UI                ${running.apiUrl}/ui/  (user admin; password printed at first start)
  data                  ${config.data_dir}

Try it (in another terminal):
  export PGPASSWORD=$(npx vigil token --sub alice --groups dba)
  psql "host=127.0.0.1 port=${port} user=alice dbname=local-pg" -c 'select 1'
  curl -s -H "Authorization: Bearer $(npx vigil token --sub auditor --roles analyst)" ${running.apiUrl}/api/sessions

`;
}
