/**
 * Terminal replay API over a REAL recorded SSH session (real sshd, the gateway, an ssh2 client with a
 * PTY), folded by ingest's terminal transform (snapshots every 512 bytes, so there are several) into
 * chDB:
 * - the frame: channel, PTY size, duration, command markers;
 * - paging by seq covers every output row exactly once, in order, and never serves input rows;
 * - seeking: for many instants, the nearest snapshot + the events after it up to that instant
 *   render the same screen (@xterm/headless) as replaying everything from the start;
 * - live (server-sent events): catch-up from the latest snapshot, new rows as they are stored, `end`
 *   once the session has ended; `after_seq` resumes without gap;
 * - each answer is a recording.viewed on a real local event log (replay / live); roles enforced.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import type { ClientChannel } from 'ssh2';
import xtermHeadless from '@xterm/headless';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { openDevIssuer, type DevIssuer } from '@vigil/identity/dev-issuer';
import { createVerifier } from '@vigil/identity/verifier';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { Topics, type EventLog } from '@vigil/eventlog';
import { decode, type RecordingViewed } from '@vigil/schemas';
import { TerminalTransform, emptyTerminalRows, type TerminalRows } from '@vigil/ingest/transforms/terminal/terminal';
import { startSshd, startSshHarness, connectClient, until, type Sshd, type SshHarness } from '@vigil/gateway/protocols/ssh/testkit';
import { buildApi } from './app.ts';
import { createAccessAudit, type AccessAudit } from './access-audit.ts';
import type { TerminalInfoBody, TerminalPageBody } from './plugins/terminal.ts';

const ISSUER = 'http://127.0.0.1:8480';
let dir: string;
let store: ClickHouseClient;
let issuer: DevIssuer;
let log: EventLog;
let audit: AccessAudit;
let app: FastifyInstance;
let sshd: Sshd;
let h: SshHarness;
let sid: string;
let rows: TerminalRows;
const tokens: Record<string, string> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-term-'));
  store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
  await applyDdl(store);
  issuer = await openDevIssuer({ dir: join(dir, 'issuer'), issuer: ISSUER });
  for (const role of ['analyst', 'approver']) tokens[role] = await issuer.mint({ sub: `${role}-user`, roles: [role], ttl_s: 600, audience: 'vigil' });
  log = await LocalEventLog.open({ dir: join(dir, 'log'), fsync: 'never' });
  await log.ensureTopics([Topics.frames]);
  audit = createAccessAudit(log.producer(), { version: 'test' });
  app = await buildApi({ config: {}, verifier: createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file }), store, audit });

  sshd = await startSshd();
  h = await startSshHarness(sshd);
  const c = await connectClient(h, { sub: 'term-user' });
  const ch = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: 'xterm', cols: 90, rows: 20 }, (e, s) => (e ? reject(e) : resolve(s))));
  const got: Buffer[] = [];
  ch.on('data', (d: Buffer) => got.push(d));
  const text = (): string => Buffer.concat(got).toString();
  await until(() => text().includes('$ '), 'prompt');
  ch.write("printf '\\033[1;32mgreen\\033[0m héllo ✓\\n'\r");
  await until(() => text().includes('héllo'), 'utf-8 output');
  ch.write('seq 1 400\r');
  await until(() => text().includes('400\r\n'), 'seq');
  ch.write('clear; echo after-clear\r');
  await until(() => /after-clear[\s\S]*\$ $/.test(text()), 'clear');
  // Three bursts of 1.2 KB apart in time: each is its own output event over the 512-byte snapshot
  // step, so there are several snapshots however sshd happens to chunk the output.
  ch.write('for i in 1 2 3; do seq 1000 1200; sleep 0.2; done; echo bursts-$((1+2))\r');
  await until(() => text().includes('bursts-3\r\n'), 'bursts');
  const closed = new Promise<void>((r) => ch.once('close', () => r()));
  ch.write('exit\r');
  await closed;
  c.end();
  [sid] = h.sessionsOf('term-user') as [string];
  await until(() => h.session(sid).events.some((e) => e.type === 'session.ended'), 'ended');

  const t = new TerminalTransform({ snapshot_every_bytes: 512, snapshot_every_us: 60_000_000 });
  rows = emptyTerminalRows();
  for (const e of h.session(sid).events) t.fold(e, { sub: 'term-user', target_id: 'web-1' }, rows);
  await t.settle();
  await store.insert({ table: 'terminal', values: rows.terminal, format: 'JSONEachRow' });
  await store.insert({ table: 'terminal_snapshots', values: rows.terminal_snapshots, format: 'JSONEachRow' });
});

after(async () => {
  await app?.close();
  await audit?.close();
  await log?.close();
  await h?.close();
  await sshd?.stop();
  if (store) await releaseStore(store);
  rmSync(dir, { recursive: true, force: true });
});

const get = (url: string, role = 'analyst') => app.inject({ url, headers: { authorization: `Bearer ${tokens[role]}` } });

async function allPages(limit: number): Promise<TerminalPageBody['events']> {
  const out: TerminalPageBody['events'] = [];
  let after = -1;
  for (let i = 0; i < 1000; i++) {
    const res = await get(`/api/sessions/${sid}/terminal/events?after_seq=${after}&limit=${limit}`);
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json() as TerminalPageBody;
    assert.equal(page.snapshot, null);
    out.push(...page.events);
    if (page.next_after_seq === null) return out;
    after = page.next_after_seq;
  }
  throw new Error('too many pages');
}

/** Screen text of a headless terminal after writing the given VT input. */
async function render(cols: number, rowsN: number, feed: (Uint8Array | string)[]): Promise<string> {
  const term = new xtermHeadless.Terminal({ cols, rows: rowsN, scrollback: 0, allowProposedApi: true });
  for (const f of feed) await new Promise<void>((r) => term.write(f, r));
  const b = term.buffer.active;
  const lines = Array.from({ length: term.rows }, (_, i) => b.getLine(b.viewportY + i)?.translateToString(true) ?? '');
  const cursor = `${b.cursorX},${b.cursorY}`;
  term.dispose();
  return `${lines.join('\n')}\n@${cursor}`;
}

test('the frame: PTY size, command markers in order, a duration, several snapshots', async () => {
  const res = await get(`/api/sessions/${sid}/terminal`);
  assert.equal(res.statusCode, 200, res.body);
  const info = res.json() as TerminalInfoBody;
  assert.deepEqual([info.cols, info.rows], [90, 20]);
  assert.equal(info.live, false);
  assert.ok(info.duration_us > 0);
  assert.ok(info.snapshots >= 3, `snapshots: ${info.snapshots}`);
  const labels = info.markers.map((m) => m.label);
  const want = ["printf '\\033[1;32mgreen\\033[0m héllo ✓\\n'", 'seq 1 400', 'clear; echo after-clear', 'for i in 1 2 3; do seq 1000 1200; sleep 0.2; done; echo bursts-$((1+2))', 'exit'];
  assert.deepEqual(labels, want);
  for (let i = 1; i < info.markers.length; i++) assert.ok(info.markers[i]!.t_us >= info.markers[i - 1]!.t_us);
});

test('paging by seq serves every output row once, in order, and no input row', async () => {
  const small = await allPages(10);
  const big = await allPages(2000);
  assert.deepEqual(small, big);
  const stored = rows.terminal.filter((r) => r.code !== 'i' && r.channel === 0);
  assert.equal(small.length, stored.length);
  assert.ok(!small.some((e) => (e.code as string) === 'i'));
  for (let i = 1; i < small.length; i++) assert.ok(small[i]!.seq >= small[i - 1]!.seq);
  const out = Buffer.concat(small.filter((e) => e.code === 'o').map((e) => Buffer.from(e.data, 'base64'))).toString();
  assert.match(out, /héllo ✓/);
  assert.match(out, /1200\r\n1000\r\n/, 'the bursts follow one another');
  assert.match(out, /bursts-3/);
});

test('seek: nearest snapshot + the events after it render the same screen as playing from the start', async () => {
  const info = (await get(`/api/sessions/${sid}/terminal`)).json() as TerminalInfoBody;
  const all = await allPages(2000);
  const outputs = all.filter((e) => e.code === 'o');
  // Instants across the session, including one just after the clear and the very end.
  const instants = [...new Set([0, ...outputs.filter((_, i) => i % 7 === 0).map((e) => e.t_us), info.duration_us])];
  let fromSnapshot = 0;
  for (const at of instants) {
    const res = await get(`/api/sessions/${sid}/terminal/events?at_us=${at}&limit=2000`);
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json() as TerminalPageBody;
    const expected = await render(info.cols, info.rows, outputs.filter((e) => e.t_us <= at).map((e) => Buffer.from(e.data, 'base64')));
    const feed: (string | Uint8Array)[] = [];
    let cols = info.cols;
    let rowsN = info.rows;
    if (page.snapshot) {
      fromSnapshot++;
      assert.ok(page.snapshot.t_us <= at);
      assert.ok(page.events.every((e) => e.seq > page.snapshot!.seq));
      cols = page.snapshot.cols;
      rowsN = page.snapshot.rows;
      feed.push(page.snapshot.screen);
    }
    feed.push(...page.events.filter((e) => e.code === 'o' && e.t_us <= at).map((e) => Buffer.from(e.data, 'base64')));
    assert.equal(await render(cols, rowsN, feed), expected, `screen at ${at} µs`);
  }
  assert.ok(fromSnapshot >= 3, 'most seeks start from a snapshot');
  const bad = await get(`/api/sessions/${sid}/terminal/events?at_us=5&after_seq=3`);
  assert.equal(bad.statusCode, 400);
});

test('no recording: 404; roles: an approver may not replay; no token: 401', async () => {
  assert.equal((await get('/api/sessions/nope/terminal')).statusCode, 404);
  assert.equal((await get('/api/sessions/nope/terminal/events')).statusCode, 404);
  assert.equal((await get(`/api/sessions/${sid}/terminal`, 'approver')).statusCode, 403);
  assert.equal((await get(`/api/sessions/${sid}/terminal/live`, 'approver')).statusCode, 403);
  assert.equal((await app.inject({ url: `/api/sessions/${sid}/terminal/events` })).statusCode, 401);
});

/** Read server-sent events until `until` says stop. */
async function sse(url: string, stopWhen: (events: { event: string; data: any }[]) => boolean, onEvent?: (e: { event: string; data: any }) => Promise<void>) {
  // A stream that never ends fails this test in 30 s instead of hanging the file.
  const res = await fetch(url, { headers: { authorization: `Bearer ${tokens.analyst}` }, signal: AbortSignal.timeout(30_000) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.getReader();
  const events: { event: string; data: any }[] = [];
  let buf = '';
  const dec = new TextDecoder();
  while (!stopWhen(events)) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (block.startsWith(':')) continue;
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null');
      events.push({ event, data });
      await onEvent?.({ event, data });
    }
  }
  await reader.cancel().catch(() => {});
  return events;
}

test('live: catches up from the latest snapshot, streams rows as they are stored, ends with the session', async () => {
  const live = `live-${randomUUID()}`;
  const src = rows.terminal.filter((r) => r.channel === 0);
  // Split where the stored half ends with output after its latest snapshot, so the catch-up sends
  // rows (not only the snapshot) before the rest is stored.
  const lastSnapBefore = (seq: number) => Math.max(-1, ...rows.terminal_snapshots.filter((s) => s.seq < seq).map((s) => s.seq));
  let half = Math.floor(src.length / 2);
  while (half < src.length - 1 && !src.slice(0, half).some((r) => r.code !== 'i' && r.seq > lastSnapBefore(src[half]!.seq))) half++;
  assert.ok(half < src.length - 1, 'a split with output after the snapshot');
  const as = <T extends { session_id: string }>(r: T): T => ({ ...r, session_id: live });
  await store.insert({ table: 'sessions', format: 'JSONEachRow', values: [{ session_id: live, version: 1, started_at: src[0]!.time, sub: 'term-user', target_id: 'web-1', protocol: 'ssh', gateway_id: 'gw' }] });
  await store.insert({ table: 'terminal', values: src.slice(0, half).map(as), format: 'JSONEachRow' });
  const firstSeq = src[half]!.seq;
  const snaps = rows.terminal_snapshots.filter((s) => s.seq < firstSeq).map(as);
  await store.insert({ table: 'terminal_snapshots', values: snaps, format: 'JSONEachRow' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  let added = false;
  const events = await sse(`${base}/api/sessions/${live}/terminal/live`, (ev) => ev.some((e) => e.event === 'end'), async (e) => {
    // The catch-up's first rows are out: the rest is stored while the stream is open.
    if (e.event === 'events' && !added) {
      added = true;
      // The rest of the recording and the end arrive while the stream is open.
      await store.insert({ table: 'terminal', values: src.slice(half).map(as), format: 'JSONEachRow' });
      await store.insert({ table: 'sessions', format: 'JSONEachRow', values: [{ session_id: live, version: 2, started_at: src[0]!.time, ended_at: src.at(-1)!.time, end_reason: 'client_closed', sub: 'term-user', target_id: 'web-1', protocol: 'ssh', gateway_id: 'gw' }] });
    }
  });
  assert.equal(events[0]!.event, 'info');
  assert.equal(events[0]!.data.live, true);
  assert.equal(events[1]!.event, 'snapshot');
  const snapSeq = events[1]!.data.seq as number;
  assert.equal(snapSeq, snaps.at(-1)!.seq);
  const got = events.filter((e) => e.event === 'events').flatMap((e) => e.data.events as { seq: number; code: string }[]);
  const want = src.filter((r) => r.seq > snapSeq && r.code !== 'i');
  assert.deepEqual(got.map((e) => `${e.seq}${e.code}`), want.map((r) => `${r.seq}${r.code}`), 'every row after the snapshot, once, in order');
  assert.equal(events.at(-1)!.event, 'end');

  // Resuming after a given seq sends only what follows it, then ends (the session is over).
  const mid = want[Math.floor(want.length / 2)]!.seq;
  const resumed = await sse(`${base}/api/sessions/${live}/terminal/live?after_seq=${mid}`, (ev) => ev.some((e) => e.event === 'end'));
  assert.ok(!resumed.some((e) => e.event === 'snapshot'));
  const again = resumed.filter((e) => e.event === 'events').flatMap((e) => e.data.events as { seq: number }[]);
  assert.deepEqual(again.map((e) => e.seq), want.filter((r) => r.seq > mid).map((r) => r.seq));
});

test('every answer is a recording.viewed in the API chain (replay, live), naming the viewer and the route', async () => {
  await audit.close();
  const seen: RecordingViewed[] = [];
  const c = log.consumer({ groupId: `probe-${randomUUID()}`, topics: [Topics.frames], fromBeginning: true });
  await c.run(async (b) => {
    for (const r of b.records) {
      const e = decode(r.value);
      if (e.type === 'recording.viewed') seen.push(e as RecordingViewed);
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  await c.stop();
  const routes = new Set(seen.map((e) => `${e.view} ${e.route}`));
  assert.ok(routes.has('replay GET /api/sessions/:id/terminal'));
  assert.ok(routes.has('replay GET /api/sessions/:id/terminal/events'));
  assert.ok(routes.has('live GET /api/sessions/:id/terminal/live'));
  assert.ok(seen.every((e) => e.sub === 'analyst-user' && e.roles.includes('analyst')));
  assert.ok(!seen.some((e) => e.viewed_session_id === 'nope'), 'a missing recording is not a view');
});
