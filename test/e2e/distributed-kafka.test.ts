/**
 * The spine end to end in the distributed shape, on the real Kafka broker: `vigil gateway` (events
 * to Kafka) in one process; ingest + API (Kafka consumer group → chDB) in another. Real clients go
 * through a recording tee; the frames read back from Kafka equal the wire byte for byte, every
 * chain verifies, and the API returns what ingest landed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { KafkaEventLog } from '@vigil/eventlog/kafka/index';
import { kafkaBrokers } from '../support/kafka.ts';
import { startVigil, type VigilProcess, tempDir } from '../support/vigil-process.ts';
import { startTee, type Tee } from '../support/tee.ts';
import { psql, pipelined, type Conn } from '../support/pg-clients.ts';
import { collectSessions, ended, startedOf, assertExact } from '../support/session-log.ts';

const run = randomUUID().slice(0, 8);
const gatewayId = `gw-kafka-${run}`;
let brokers: string[];
let gateway: VigilProcess;
let backend: VigilProcess;
let tee: Tee;
let conn: Conn;

before(async () => {
  brokers = await kafkaBrokers();
  // Both processes trust the same dev issuer (shared key dir), as a real deployment trusts one IdP.
  const issuerDir = tempDir('vigil-issuer-');
  const common = {
    mode: 'distributed',
    dev_issuer: { enabled: true, dir: issuerDir },
    log: { kind: 'kafka', kafka: { brokers, client_id: `vigil-test-${run}` } },
  };
  gateway = await startVigil({ command: 'gateway', gatewayId, config: common });
  backend = await startVigil({ command: 'start', gatewayId: `${gatewayId}-backend`, config: { ...common, ingest: { group_id: `vigil-ingest-${run}` } } });
  tee = await startTee(gateway.gatewayPort);
  conn = { port: tee.port, user: 'bob', database: 'local-pg', password: await gateway.token('bob', { groups: ['dba'] }) };
});

after(async () => {
  await tee?.close();
  await gateway?.stop();
  await backend?.stop();
});

test('frames through Kafka equal the wire, chains verify, and ingest lands them', async () => {
  const client = new pg.Client({ host: '127.0.0.1', ...conn });
  await client.connect();
  assert.equal((await client.query('select $1::int * 2 as v', [21])).rows[0].v, 42);
  await assert.rejects(client.query('select * from no_such_table'), /does not exist/);
  const notified = new Promise<string>((r) => client.once('notification', (n) => r(n.payload ?? '')));
  await client.query('listen vigil_k');
  await client.query("notify vigil_k, 'via kafka'");
  assert.equal(await notified, 'via kafka');
  await client.end();
  const copied = await psql(conn, ['-c', 'create temp table t (a int)', '-c', 'copy t from stdin', '-c', 'copy t to stdout'], '1\n2\n3\n\\.\n');
  assert.equal(copied, '1\n2\n3\n');
  const large = await psql(conn, ['-At', '-c', "select repeat('y', 1000) from generate_series(1, 52000)"]);
  assert.equal(large.length, 52000 * 1001);
  const types = await pipelined(conn, [
    { sql: 'select $1::int', params: ['1'] },
    { sql: 'select 1/0', params: [] },
    { sql: 'select 2', params: [] },
  ]);
  assert.ok(types.includes('E'), 'the failing statement errors');

  await Promise.all(tee.connections.map((c) => c.closed));
  const byAddr = new Map(tee.connections.map((c) => [c.clientAddr, c]));

  const log = new KafkaEventLog({ brokers, client_id: `vigil-test-read-${run}` });
  try {
    const ours = (s: Parameters<typeof ended>[0]) => startedOf(s)?.gateway_id === gatewayId;
    const recorded = await collectSessions(log, (m) => [...m.values()].filter((s) => ended(s) && ours(s)).length >= tee.connections.length, 120_000);
    let matched = 0;
    for (const s of recorded.values()) {
      const wire = byAddr.get(startedOf(s)?.client_addr ?? '');
      if (!ours(s)) continue;
      assert.ok(wire, `session ${s.id} from ${startedOf(s)?.client_addr} has a tee connection`);
      assert.ok(ended(s), `session ${s.id} ended`);
      assertExact(s, wire!);
      matched++;
    }
    assert.equal(matched, tee.connections.length);
  } finally {
    await log.close();
  }

  const analyst = await backend.token('carol', { roles: ['analyst'] });
  const deadline = Date.now() + 120_000;
  let sessions: any[] = [];
  while (Date.now() < deadline) {
    const res = await fetch(`http://127.0.0.1:${backend.apiPort}/api/sessions?sub=bob&limit=100`, { headers: { authorization: `Bearer ${analyst}` } });
    assert.equal(res.status, 200);
    sessions = ((await res.json()) as any).items.filter((s: any) => byAddr.has(s.client_addr) && s.end_reason);
    if (sessions.length >= tee.connections.length) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(sessions.length, tee.connections.length, 'every session landed in chDB via the Kafka consumer group');
});
