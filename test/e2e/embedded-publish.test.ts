/**
 * Embedded mode (`vigil start`: ingest in a worker thread over the MessagePort bridge) publishes
 * what distributed ingest publishes: an alert raised by a statement through the real gateway is
 * stored (GET /api/alerts), published on `vigil.alerts.v1`, and every event of the session is on
 * `vigil.ocsf.v1` as OCSF — read back from the local log on disk after a clean stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { Topics } from '@vigil/eventlog/types';
import { startVigil } from '../support/vigil-process.ts';

async function readTopic(dir: string, topic: string): Promise<{ key: string; value: string }[]> {
  const log = await LocalEventLog.open({ dir, read_only: true });
  try {
    const out: { key: string; value: string }[] = [];
    const consumer = log.consumer({ groupId: `read-${topic}-${Date.now()}`, topics: [topic] });
    await consumer.run(async (batch) => {
      for (const r of batch.records) out.push({ key: r.key, value: r.value.toString('utf8') });
    });
    // The local log delivers what it holds promptly; give it a moment to hand over the tail.
    await new Promise((r) => setTimeout(r, 1500));
    await consumer.stop();
    return out;
  } finally {
    await log.close();
  }
}

test('vigil start: alerts go to vigil.alerts.v1 and events to vigil.ocsf.v1 from the ingest worker', async () => {
  const vigil = await startVigil({
    config: { ingest: { detect: { bulk_read: { max_rows_per_query: 5 }, off_hours: { enabled: false } } } },
  });
  let sessionId = '';
  try {
    const token = await vigil.token('frank', { groups: ['dba'] });
    const c = new pg.Client({ host: '127.0.0.1', port: vigil.gatewayPort, user: 'frank', database: 'local-pg', password: token });
    await c.connect();
    assert.equal((await c.query('select generate_series(1, 50) as n')).rows.length, 50);
    await c.end();

    const analyst = await vigil.token('carol', { roles: ['analyst'] });
    const deadline = Date.now() + 60_000;
    let alerts: { rule: string; session_id: string; alert_id: string }[] = [];
    while (Date.now() < deadline) {
      const res = await fetch(`http://127.0.0.1:${vigil.apiPort}/api/alerts?sub=frank`, { headers: { authorization: `Bearer ${analyst}` } });
      assert.equal(res.status, 200);
      alerts = ((await res.json()) as { items: typeof alerts }).items;
      if (alerts.length > 0) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.deepEqual(alerts.map((a) => a.rule), ['bulk_read.per_query'], 'the alert was stored');
    sessionId = alerts[0]!.session_id;
    // The session's end is ingested (and so published) before the stop below.
    while (Date.now() < deadline) {
      const res = await fetch(`http://127.0.0.1:${vigil.apiPort}/api/sessions?sub=frank`, { headers: { authorization: `Bearer ${analyst}` } });
      const items = ((await res.json()) as { items: { session_id: string; end_reason: string }[] }).items;
      if (items.some((s) => s.session_id === sessionId && s.end_reason)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(await vigil.stop(), 0, vigil.output());

    const published = (await readTopic(`${vigil.dataDir}/log`, Topics.alerts)).map((r) => JSON.parse(r.value) as { alert_id: string; rule: string; session_id: string });
    assert.deepEqual(published.map((a) => [a.rule, a.session_id, a.alert_id]), [['bulk_read.per_query', sessionId, alerts[0]!.alert_id]], 'the alert was published');

    const ocsf = (await readTopic(`${vigil.dataDir}/log`, Topics.ocsf)).map((r) => JSON.parse(r.value) as { class_uid: number; metadata: { uid?: string; correlation_uid?: string }; finding_info?: { uid: string } });
    const classes = new Set(ocsf.map((o) => o.class_uid));
    assert.ok(classes.has(2004), `a Detection Finding is exported (classes ${[...classes]})`);
    assert.ok(classes.has(6005), 'the statement is exported as Datastore Activity');
    assert.ok(classes.has(3002), 'the login is exported as Authentication');
    assert.ok(ocsf.some((o) => o.class_uid === 2004 && JSON.stringify(o).includes(alerts[0]!.alert_id)), 'the finding carries the alert id');
  } finally {
    if (vigil.child.exitCode === null) await vigil.stop();
  }
});
