/**
 * Live view of a PostgreSQL session over server-sent events, against real chDB and a listening API:
 * it catches up with what is stored, streams statements as they land, resumes from `after_seq`
 * without repeats, ends with the session, and is one `recording.viewed` (view `live`).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { openDevIssuer, type DevIssuer } from '@vigil/identity/dev-issuer';
import { createVerifier } from '@vigil/identity/verifier';
import { decode, type RecordingViewed } from '@vigil/schemas';
import { MemoryProducer } from '@vigil/gateway/protocols/pg/testkit';
import { buildApi } from './app.ts';
import { createAccessAudit, type AccessAudit } from './access-audit.ts';

const ISSUER = 'http://127.0.0.1:8480';
let dir: string;
let store: ClickHouseClient;
let issuer: DevIssuer;
let app: FastifyInstance;
let base: string;
let token: string;
let producer: MemoryProducer;
let audit: AccessAudit;

const ch = (ms: number) => new Date(Date.UTC(2026, 10, 20, 10, 0, 0) + ms).toISOString().replace('T', ' ').replace('Z', '000');
const session = (version: number, ended: boolean) => ({ session_id: 'live1', version, started_at: ch(0), ended_at: ended ? ch(9000) : null, sub: 'alice', target_id: 'main', protocol: 'postgres', gateway_id: 'gw' });
const query = (seq: number) => ({
  session_id: 'live1', seq, end_seq: seq + 1, event_id: `q${seq}`, time: ch(seq), duration_us: 5, sub: 'alice', target_id: 'main', protocol_kind: 'simple',
  statement: `SELECT ${seq}`, statement_name: '', params: [], command_tag: 'SELECT 1', rows: 1, bytes: 10, sqlstate: '', error: '', statement_known: 1,
});

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-live-'));
  store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
  await applyDdl(store);
  issuer = await openDevIssuer({ dir: join(dir, 'issuer'), issuer: ISSUER });
  token = await issuer.mint({ sub: 'ann', roles: ['analyst'], ttl_s: 600, audience: 'vigil' });
  await store.insert({ table: 'sessions', format: 'JSONEachRow', values: [session(1, false)] });
  await store.insert({ table: 'queries', format: 'JSONEachRow', values: [query(2), query(4)] });
  producer = new MemoryProducer();
  audit = createAccessAudit(producer, { api_id: 'api-live', version: '0.1.0' });
  app = await buildApi({ config: {}, verifier: createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file }), store, audit });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});

after(async () => {
  await app?.close();
  await audit?.close();
  if (store) await releaseStore(store);
  rmSync(dir, { recursive: true, force: true });
});

/** Read SSE messages until `until` says stop. */
async function readEvents(url: string, until: (events: { event: string; data: any }[]) => boolean, onEach?: (events: { event: string; data: any }[]) => Promise<void>): Promise<{ event: string; data: any }[]> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const events: { event: string; data: any }[] = [];
  while (!until(events)) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (ev && data) {
        events.push({ event: ev, data: JSON.parse(data) });
        await onEach?.(events);
      }
    }
  }
  await reader.cancel();
  return events;
}

test('catches up, streams statements as they land, ends with the session; a view is recorded', async () => {
  let inserted = false;
  const events = await readEvents(
    `${base}/api/sessions/live1/queries/live`,
    (ev) => ev.some((e) => e.event === 'end'),
    async (ev) => {
      if (!inserted && ev.length === 1) {
        inserted = true;
        await store.insert({ table: 'queries', format: 'JSONEachRow', values: [query(6), query(8)] });
        await new Promise((r) => setTimeout(r, 600));
        await store.insert({ table: 'sessions', format: 'JSONEachRow', values: [session(2, true)] });
      }
    },
  );
  const seqs = events.filter((e) => e.event === 'queries').flatMap((e) => e.data.queries.map((q: { seq: number }) => q.seq));
  assert.deepEqual(seqs, [2, 4, 6, 8], 'every statement once, in order');
  assert.equal(events.at(-1)!.event, 'end');
  assert.ok(events[0]!.data.queries[0].verdict, 'statements carry their verdicts');
  await audit.close();
  const views = producer.records.map((r) => decode(r.value)).filter((e): e is RecordingViewed => e.type === 'recording.viewed');
  assert.ok(views.some((v) => v.view === 'live' && v.viewed_session_id === 'live1' && v.sub === 'ann'));
});

test('resumes from after_seq without repeats; unknown sessions are 404', async () => {
  const events = await readEvents(`${base}/api/sessions/live1/queries/live?after_seq=4`, (ev) => ev.some((e) => e.event === 'end'));
  assert.deepEqual(events.filter((e) => e.event === 'queries').flatMap((e) => e.data.queries.map((q: { seq: number }) => q.seq)), [6, 8]);
  const res = await fetch(`${base}/api/sessions/nope/queries/live`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 404);
});
