/**
 * The spine end to end, embedded mode, as a user runs it: `vigil start` as a child process against
 * the machine's PostgreSQL; real clients (psql, node-postgres, a raw pipelining frontend) through a
 * recording tee; then the recorded log is compared byte for byte with the wire, every chain is
 * verified, and the API (over HTTP) returns the sessions and queries that ingest landed in chDB.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { startVigil, type VigilProcess } from '../support/vigil-process.ts';
import { startTee, type Tee, type TeeConnection } from '../support/tee.ts';
import { psql, pipelined, type Conn } from '../support/pg-clients.ts';
import { startCluster, type Cluster } from '../support/pg-cluster.ts';
import { collectSessions, ended, startedOf, assertExact, type RecordedSession } from '../support/session-log.ts';

let vigil: VigilProcess;
let tee: Tee;
let conn: Conn;
let analyst: string;
/** A cluster with room for 200 sessions at once (the machine's allows 100). */
let wide: Cluster;

before(async () => {
  wide = await startCluster({ max_connections: 260 });
  vigil = await startVigil({
    config: {
      targets: [
        { id: 'local-pg', protocol: 'postgres', host: '127.0.0.1', port: 5432, database: 'postgres', user: 'postgres' },
        { id: 'wide-pg', protocol: 'postgres', host: '127.0.0.1', port: wide.port, database: 'postgres', user: 'postgres' },
      ],
    },
  });
  tee = await startTee(vigil.gatewayPort);
  conn = { port: tee.port, user: 'alice', database: 'local-pg', password: await vigil.token('alice', { groups: ['dba'] }) };
  analyst = await vigil.token('carol', { roles: ['analyst'] });
});

after(async () => {
  await tee?.close();
  const code = await vigil?.stop();
  wide?.stop();
  assert.equal(code, 0, `vigil exited with ${code}:\n${vigil.output()}`);
});

async function api(path: string, token = analyst): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${vigil.apiPort}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const LARGE_ROWS = 52_000; // × ~1 KB per DataRow ≈ 52 MB of result

test('real traffic through the gateway is recorded byte for byte and lands in chDB', async () => {
  // 1. node-postgres: simple, multi-statement, extended with parameters, an error, LISTEN/NOTIFY.
  const client = new pg.Client({ host: '127.0.0.1', ...conn });
  await client.connect();
  assert.equal((await client.query('select 1 as one')).rows[0].one, 1);
  await client.query('select 1; select 2');
  assert.equal((await client.query('select $1::int + $2::int as sum', [20, 22])).rows[0].sum, 42);
  await assert.rejects(client.query('select 1/0'), /division by zero/);
  const notified = new Promise<string>((r) => client.once('notification', (n) => r(n.payload ?? '')));
  await client.query('listen vigil_e2e');
  await client.query("notify vigil_e2e, 'hello'");
  assert.equal(await notified, 'hello');
  await client.end();

  // 2. psql: COPY FROM STDIN and TO STDOUT, and a large result.
  const copied = await psql(conn, ['-c', 'create temp table t (a int, b text)', '-c', 'copy t from stdin', '-c', 'copy t to stdout'], '1\tone\n2\ttwo\n\\.\n');
  assert.equal(copied, '1\tone\n2\ttwo\n');
  const large = await psql(conn, ['-At', '-c', `select repeat('x', 1000) from generate_series(1, ${LARGE_ROWS})`]);
  assert.equal(large.length, LARGE_ROWS * 1001);

  // 3. Pipelining: three Parse/Bind/Execute and one Sync in a single write.
  const types = await pipelined(conn, [
    { sql: 'select $1::int', params: ['7'] },
    { sql: 'select $1::text is null', params: [null] },
    { sql: 'select 3', params: [] },
  ]);
  assert.deepEqual(types.filter((t) => t === 'C').length, 3);

  await Promise.all(tee.connections.map((c) => c.closed));
  const byAddr = new Map(tee.connections.map((c) => [c.clientAddr, c]));
  assert.equal(tee.connections.length, 4, 'node-postgres, psql ×2, pipelined');

  // 4. The API returns every session, ended, with its queries and counts (ingest → chDB).
  const sessions = await waitFor('sessions in the API', async () => {
    const { status, body } = await api('/api/sessions?sub=alice&limit=100');
    assert.equal(status, 200);
    const done = body.items.filter((s: any) => s.end_reason);
    return done.length >= tee.connections.length ? done : undefined;
  });
  const largeSession = sessions.find((s: any) => s.bytes_s2c > LARGE_ROWS * 1000);
  assert.ok(largeSession, 'a session with the large result');
  const detail = await waitFor('large query in the API', async () => {
    const { body } = await api(`/api/sessions/${largeSession.session_id}`);
    return body.queries?.some((q: any) => q.rows === LARGE_ROWS) ? body : undefined;
  });
  const q = detail.queries.find((q: any) => q.rows === LARGE_ROWS);
  assert.match(q.statement, /generate_series/);
  assert.ok(q.bytes >= LARGE_ROWS * 1000, `bytes ${q.bytes}`);

  // 5. The log: every session's chain verifies and its frames equal the wire after auth.
  const log = await LocalEventLog.open({ dir: `${vigil.dataDir}/log`, read_only: true });
  try {
    const recorded = await collectSessions(log, (m) => [...m.values()].filter(ended).length >= tee.connections.length);
    let matched = 0;
    for (const s of recorded.values()) {
      const started = startedOf(s);
      const wire = started?.client_addr ? byAddr.get(started.client_addr) : undefined;
      if (!wire) continue;
      assertExact(s, wire);
      matched++;
    }
    assert.equal(matched, tee.connections.length, 'every tee connection has an exact recorded session');
  } finally {
    await log.close();
  }
});

test('200 concurrent interleaved sessions are each recorded exactly and in order', async () => {
  const tee200 = await startTee(vigil.gatewayPort);
  try {
    const N = 200;
    const clients = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const c = new pg.Client({ host: '127.0.0.1', ...conn, database: 'wide-pg', port: tee200.port, application_name: `c${i}` });
        await c.connect();
        return c;
      }),
    );
    // Interleave: every client runs several statements, all in flight at once.
    await Promise.all(
      clients.map(async (c, i) => {
        for (let k = 0; k < 5; k++) {
          const r = await c.query('select $1::int as i, $2::int as k, repeat($3, 50) as pad', [i, k, String.fromCharCode(97 + (i % 26))]);
          assert.equal(r.rows[0].i, i);
        }
        await c.end();
      }),
    );
    await Promise.all(tee200.connections.map((c) => c.closed));
    const wires = new Map<string, TeeConnection>(tee200.connections.map((c) => [c.clientAddr, c]));
    const log = await LocalEventLog.open({ dir: `${vigil.dataDir}/log`, read_only: true });
    try {
      const recorded = await collectSessions(log, (m) => [...m.values()].filter((s) => ended(s) && wires.has(startedOf(s)?.client_addr ?? '')).length >= N);
      const mine: RecordedSession[] = [...recorded.values()].filter((s) => wires.has(startedOf(s)?.client_addr ?? ''));
      assert.equal(mine.length, N);
      for (const s of mine) assertExact(s, wires.get(startedOf(s)!.client_addr!)!);
    } finally {
      await log.close();
    }
  } finally {
    await tee200.close();
  }
});

test('vigil verify, beside the running gateway, verifies every recorded chain', async () => {
  const out = await vigil.cli(['verify', '--idle-ms', '1500']);
  const m = /^(\d+) sessions, (\d+) records: (\d+) verified, (\d+) failed, (\d+) open/m.exec(out);
  assert.ok(m, out);
  assert.ok(Number(m[1]) >= 204, `sessions seen: ${m[1]}`);
  assert.equal(m[4], '0', out);
  assert.equal(m[3], m[1]);
  const json = JSON.parse(await vigil.cli(['verify', '--json', '--idle-ms', '1500'])) as { sessions: { problem?: string; events: number }[] };
  assert.equal(json.sessions.length, Number(m[1]));
  assert.ok(json.sessions.every((s) => !s.problem && s.events > 0));
});
