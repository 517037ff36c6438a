/**
 * Credential custody, as deployed: `vigil start` holds a SCRAM password for the target (from an
 * environment variable), callers authenticate with tokens only. After real sessions — successful,
 * failing and refused — the password appears nowhere: not in the event log's bytes, not in any
 * ClickHouse row, not in API responses, not in the process's stdout/stderr.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { openStore, releaseStore } from '@vigil/ingest/store/client';
import { startPasswordPostgres } from '../support/pg-scram.ts';
import { startVigil } from '../support/vigil-process.ts';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test('the target password is nowhere in the log, the store, the API or the process output', async () => {
  const upstream = await startPasswordPostgres();
  const { user, password } = upstream.roles.scram;
  const needles = [password, Buffer.from(password).toString('base64'), Buffer.from(password).toString('hex')];
  const vigil = await startVigil({
    config: {
      targets: [{ id: 'secure-pg', protocol: 'postgres', host: '127.0.0.1', port: upstream.port, database: 'postgres', user, password: { env: 'VIGIL_TEST_PG_PASSWORD' } }],
    },
    env: { VIGIL_TEST_PG_PASSWORD: password },
  });
  try {
    const token = await vigil.token('frank');
    const c = new pg.Client({ host: '127.0.0.1', port: vigil.gatewayPort, user: 'frank', database: 'secure-pg', password: token });
    await c.connect();
    assert.equal((await c.query('select current_user as u')).rows[0].u, user, 'the gateway logged in as the target role');
    await assert.rejects(c.query('select * from missing_table'));
    await c.query("select 'not the password' as x");
    await c.end();
    // A caller that tries the password itself gets nothing (it is not a token).
    const bad = new pg.Client({ host: '127.0.0.1', port: vigil.gatewayPort, user: 'frank', database: 'secure-pg', password });
    await assert.rejects(bad.connect(), /28P01|token/i);

    const analyst = await vigil.token('grace', { roles: ['analyst'] });
    const get = async (path: string) => (await fetch(`http://127.0.0.1:${vigil.apiPort}${path}`, { headers: { authorization: `Bearer ${analyst}` } })).text();
    let list = '';
    for (let i = 0; i < 120; i++) {
      list = await get('/api/sessions?limit=100');
      if ((JSON.parse(list).items as { end_reason: string; sub: string }[]).filter((s) => s.end_reason).length >= 2) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const bodies = [list, await get('/api/health'), await get('/metrics')];
    for (const s of JSON.parse(list).items as { session_id: string }[]) bodies.push(await get(`/api/sessions/${s.session_id}`));
    for (const body of bodies) for (const n of needles) assert.ok(!body.includes(n), 'password in an API response');
    assert.ok(bodies.some((b) => b.includes('missing_table')), 'the API does show recorded statements');
  } finally {
    assert.equal(await vigil.stop(), 0);
    await upstream.stop();
  }

  // Every byte of the event log (segments, offsets) and of the process output.
  for (const file of filesUnder(join(vigil.dataDir, 'log'))) {
    const bytes = readFileSync(file);
    for (const n of needles) assert.equal(bytes.indexOf(n), -1, `password bytes in ${file}`);
  }
  assert.ok(vigil.output().length > 0);
  for (const n of needles) assert.ok(!vigil.output().includes(n), 'password in stdout/stderr');

  // Every row of every ClickHouse table, as text.
  const store = await openStore({ kind: 'chdb', path: join(vigil.dataDir, 'clickhouse') });
  try {
    const tables = (await (await store.query({ query: 'SHOW TABLES', format: 'JSONEachRow' })).json()) as { name: string }[];
    assert.ok(tables.length >= 3);
    let rows = 0;
    for (const { name } of tables) {
      const dump = await (await store.query({ query: `SELECT * FROM ${name}`, format: 'TabSeparated' })).text();
      rows += dump.split('\n').length - 1;
      for (const n of needles) assert.ok(!dump.includes(n), `password in ClickHouse table ${name}`);
    }
    assert.ok(rows > 10, `the store holds the sessions' rows (${rows})`);
  } finally {
    await releaseStore(store);
  }
});
