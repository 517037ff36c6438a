/**
 * Asciicast export of a REAL recorded SSH session (real sshd, the gateway, ssh2 client with a PTY),
 * folded by ingest's terminal transform into chDB: v2 passes asciinema's own parser (`asciinema
 * cat`, Debian's asciinema 2.2 reads v2) and reproduces the client's output exactly; v2 and v3 pass
 * a strict parser of the published formats; roles are enforced; a UTF-8 character split across
 * frames comes out whole.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import type { ClientChannel } from 'ssh2';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { openDevIssuer, type DevIssuer } from '@vigil/identity/dev-issuer';
import { createVerifier } from '@vigil/identity/verifier';
import { TerminalTransform, emptyTerminalRows } from '@vigil/ingest/transforms/terminal/terminal';
import { startSshd, startSshHarness, connectClient, until, type Sshd, type SshHarness } from '@vigil/gateway/protocols/ssh/testkit';
import { buildApi } from './app.ts';
import { asciicastLines } from './plugins/asciicast.ts';

const ISSUER = 'http://127.0.0.1:8480';
let dir: string;
let store: ClickHouseClient;
let issuer: DevIssuer;
let app: FastifyInstance;
let sshd: Sshd;
let h: SshHarness;
let sid: string;
let clientOutput: Buffer;
const tokens: Record<string, string> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-cast-'));
  store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
  await applyDdl(store);
  issuer = await openDevIssuer({ dir: join(dir, 'issuer'), issuer: ISSUER });
  for (const role of ['analyst', 'approver']) tokens[role] = await issuer.mint({ sub: `${role}-user`, roles: [role], ttl_s: 600, audience: 'vigil' });
  app = await buildApi({ config: {}, verifier: createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file }), store });

  // Record a real session: a PTY shell printing colours, UTF-8 and a resize.
  sshd = await startSshd();
  h = await startSshHarness(sshd);
  const c = await connectClient(h, { sub: 'cast-user' });
  const ch = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: 'xterm', cols: 100, rows: 30 }, (e, s) => (e ? reject(e) : resolve(s))));
  const got: Buffer[] = [];
  ch.on('data', (d: Buffer) => got.push(d));
  const text = (): string => Buffer.concat(got).toString();
  await until(() => text().includes('$ '), 'prompt');
  ch.write("printf '\\033[1;31mred\\033[0m héllo wörld ✓ 日本語\\n'\r");
  await until(() => text().includes('日本語'), 'utf-8 output');
  ch.setWindow(40, 132, 0, 0);
  await new Promise((r) => setTimeout(r, 200));
  ch.write('seq 1 200\r');
  await until(() => text().includes('200\r\n'), 'seq');
  const closed = new Promise<void>((r) => ch.once('close', () => r()));
  ch.write('exit 5\r');
  await closed;
  c.end();
  [sid] = h.sessionsOf('cast-user') as [string];
  await until(() => h.session(sid).events.some((e) => e.type === 'session.ended'), 'ended');
  clientOutput = Buffer.concat(got);

  const t = new TerminalTransform();
  const rows = emptyTerminalRows();
  for (const e of h.session(sid).events) t.fold(e, { sub: 'cast-user', target_id: 'web-1' }, rows);
  await t.settle();
  await store.insert({ table: 'terminal', values: rows.terminal, format: 'JSONEachRow' });
});

after(async () => {
  await app?.close();
  await h?.close();
  await sshd?.stop();
  if (store) await releaseStore(store);
  rmSync(dir, { recursive: true, force: true });
});

const auth = (role: string) => ({ authorization: `Bearer ${tokens[role]}` });

type Ev = [number, string, string];

/** A strict reader of asciicast v2 / v3 as published; throws on any deviation. */
function strictParse(text: string, version: 2 | 3): { header: Record<string, unknown>; events: Ev[] } {
  assert.ok(text.endsWith('\n'), 'newline-terminated');
  const lines = text.slice(0, -1).split('\n');
  const header = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(header.version, version);
  assert.equal(typeof header.timestamp, 'number');
  if (version === 2) {
    assert.ok(Number.isInteger(header.width) && (header.width as number) > 0, 'v2 width');
    assert.ok(Number.isInteger(header.height) && (header.height as number) > 0, 'v2 height');
  } else {
    const term = header.term as Record<string, unknown>;
    assert.ok(term && Number.isInteger(term.cols) && Number.isInteger(term.rows), 'v3 term.cols/rows');
    assert.equal(header.width, undefined, 'v3 has no width');
  }
  const codes = version === 2 ? ['o', 'i', 'm', 'r'] : ['o', 'i', 'm', 'r', 'x'];
  let last = 0;
  const events = lines.slice(1).map((l, i) => {
    const ev = JSON.parse(l) as unknown;
    assert.ok(Array.isArray(ev) && ev.length === 3, `line ${i + 2}: a 3-element array`);
    const [time, code, data] = ev as [unknown, unknown, unknown];
    assert.ok(typeof time === 'number' && Number.isFinite(time) && time >= 0, `line ${i + 2}: time`);
    assert.ok(codes.includes(code as string), `line ${i + 2}: code ${String(code)}`);
    assert.equal(typeof data, 'string');
    if (code === 'r') assert.match(data as string, /^\d+x\d+$/);
    if (code === 'x') assert.match(data as string, /^\d+$/);
    if (version === 2) {
      assert.ok(time >= last, `line ${i + 2}: v2 times never go back`);
      last = time;
    }
    return ev as Ev;
  });
  return { header, events };
}

test("v2: asciinema's parser reproduces the client output; strict parser; header from the PTY; resize", async () => {
  const res = await app.inject({ method: 'GET', url: `/api/sessions/${sid}/asciicast?version=2`, headers: auth('analyst') });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(res.headers['content-type'] as string, /^application\/x-asciicast/);
  const { header, events } = strictParse(res.body, 2);
  assert.equal(header.width, 100);
  assert.equal(header.height, 30);
  assert.ok(events.some(([, c, d]) => c === 'r' && d === '132x40'));
  assert.ok(events.some(([, c, d]) => c === 'i' && d.includes('seq 1 200')));
  const output = events.filter(([, c]) => c === 'o').map(([, , d]) => d).join('');
  assert.equal(output, clientOutput.toString('utf8'));
  const file = join(dir, 'v2.cast');
  writeFileSync(file, res.body);
  // asciinema's own loader, exactly as `asciinema cat` uses it (cat itself insists on a /dev/tty).
  const loader = 'import sys\nfrom asciinema import asciicast\nwith asciicast.open_from_url(sys.argv[1]) as a:\n    for _, _t, text in a.stdout_events():\n        sys.stdout.write(text)\n';
  // The interpreter asciinema itself runs under (its shebang), where its package is installed.
  const asciinema = execFileSync('sh', ['-c', 'command -v asciinema'], { encoding: 'utf8' }).trim();
  const python = readFileSync(asciinema, 'utf8').split('\n')[0]!.replace(/^#!\s*/, '').split(/\s+/)[0]!;
  const cat = execFileSync(python, ['-c', loader, file], { encoding: 'utf8' });
  assert.equal(cat, clientOutput.toString('utf8'), "asciinema's parser reads the file and yields the same output");
});

test('v3: strict parser; intervals add up; exit status event', async () => {
  const res = await app.inject({ method: 'GET', url: `/api/sessions/${sid}/asciicast?version=3`, headers: auth('analyst') });
  assert.equal(res.statusCode, 200, res.body);
  const { header, events } = strictParse(res.body, 3);
  assert.deepEqual(header.term, { cols: 100, rows: 30 });
  assert.deepEqual(events.filter(([, c]) => c === 'x').map(([, , d]) => d), ['5']);
  const v2 = strictParse((await app.inject({ method: 'GET', url: `/api/sessions/${sid}/asciicast?version=2`, headers: auth('analyst') })).body, 2);
  const total3 = events.reduce((s, [t]) => s + t, 0);
  const last2 = v2.events.at(-1)![0];
  assert.ok(Math.abs(total3 - last2) < 0.01 + (events.at(-1)![1] === 'x' ? events.at(-1)![0] : 0), `v3 intervals sum ${total3} ≈ v2 end ${last2}`);
});

test('roles, unknown session, bad version', async () => {
  assert.equal((await app.inject({ method: 'GET', url: `/api/sessions/${sid}/asciicast` })).statusCode, 401);
  assert.equal((await app.inject({ method: 'GET', url: `/api/sessions/${sid}/asciicast`, headers: auth('approver') })).statusCode, 403);
  const missing = await app.inject({ method: 'GET', url: '/api/sessions/nope/asciicast', headers: auth('analyst') });
  assert.equal(missing.statusCode, 404);
  assert.match(missing.headers['content-type'] as string, /problem\+json/);
  assert.equal((await app.inject({ method: 'GET', url: `/api/sessions/${sid}/asciicast?version=4`, headers: auth('analyst') })).statusCode, 400);
  assert.ok(app.apiRoutes.some((r) => r.url === '/api/sessions/:id/asciicast' && r.roles?.includes('analyst')));
});

test('a UTF-8 character split across two frames is emitted whole', async () => {
  const check = Buffer.from('✓');
  const rows = [
    { seq_text: '1', code: 'o' as const, t: '1000000', data: check.subarray(0, 1).toString('base64') },
    { seq_text: '2', code: 'o' as const, t: '1500000', data: check.subarray(1).toString('base64') },
  ];
  async function* src() {
    yield* rows;
  }
  const out: string[] = [];
  for await (const l of asciicastLines(src(), 2, { cols: 80, rows: 24, start_us: 1_000_000 })) out.push(l);
  assert.deepEqual(out.slice(1).map((l) => JSON.parse(l) as Ev), [[0.5, 'o', '✓']]);
});
