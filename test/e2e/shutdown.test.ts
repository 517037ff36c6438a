/**
 * Shutdown is bounded: a step that never finishes is logged by name and passed, the steps after it
 * still run, and the process exits (non-zero) instead of hanging where no supervisor can restart
 * it. The hang is injected (VIGIL_FAULT=shutdown.hang:<step>, cli/src/commands/run.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { startVigil } from '../support/vigil-process.ts';
import { collectSessions, ended, startedOf } from '../support/session-log.ts';

test('a shutdown step that hangs is passed after its limit: the process exits 70 and later steps still ran', async () => {
  const v = await startVigil({ command: 'gateway', env: { VIGIL_FAULT: 'shutdown.hang:gateway', VIGIL_SHUTDOWN_STEP_MS: '1500' } });
  const token = await v.token('judy');
  const c = new pg.Client({ host: '127.0.0.1', port: v.gatewayPort, user: 'judy', database: 'local-pg', password: token });
  await c.connect();
  await c.query('select 1');
  await c.end();
  const t0 = Date.now();
  const code = await v.stop();
  assert.equal(code, 70, v.output());
  assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
  assert.match(v.output(), /"step":"gateway".*shutdown step did not finish in time/);
  assert.match(v.output(), /not every shutdown step finished/);
  // The log thread's step ran after the hung one: the session recorded before the stop is durable.
  const log = await LocalEventLog.open({ dir: `${v.dataDir}/log`, read_only: true });
  try {
    const sessions = await collectSessions(log, (m) => [...m.values()].some((s) => ended(s) && startedOf(s)?.sub === 'judy'));
    assert.ok([...sessions.values()].some((s) => ended(s) && startedOf(s)?.sub === 'judy'));
  } finally {
    await log.close();
  }
});

test('without a fault, shutdown finishes every step and exits 0', async () => {
  const v = await startVigil({ command: 'gateway' });
  assert.equal(await v.stop(), 0, v.output());
  assert.doesNotMatch(v.output(), /did not finish|shutdown step failed/);
});
