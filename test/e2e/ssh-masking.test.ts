/**
 * Issue 4 acceptance: terminal output goes through the shared masking engine (value detectors)
 * before it is stored. `vigil start` with an SSH target (a real sshd) and a policy whose mask rule
 * enables the card and api_key detectors; through the gateway, the target prints a card number and
 * an API key, each split over two writes (so over two SSH data frames), and a shell user types a card.
 * The client receives them (SSH output is not masked inline); the event log holds them (frames are
 * the audit record); ClickHouse — terminal rows, snapshots, command lines, events — and the
 * asciicast export hold none of them, in any row or across rows.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import ssh2, { type ClientChannel } from 'ssh2';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { openStore, releaseStore } from '@vigil/ingest/store/client';
import { startVigil, freePort, type VigilProcess, tempDir } from '../support/vigil-process.ts';
import { collectSessions, startedOf } from '../support/session-log.ts';
import { startSshd, TEST_USER, type Sshd } from '@vigil/gateway/protocols/ssh/testkit';

const CARD = '4111111111111111';
const KEY_A = 'sk_live_4eC39HqLy';
const KEY_B = 'jWDarjtT1zdp7dc';

let sshd: Sshd;
let vigil: VigilProcess;
let sshPort: number;

before(async () => {
  sshd = await startSshd();
  sshPort = await freePort();
  const policyFile = join(tempDir('vigil-policy-'), 'policy.yaml');
  writeFileSync(policyFile, 'version: 1\nrules:\n  - id: no-secrets-at-rest\n    mask: { detectors: [card, api_key], strategy: redact }\n');
  vigil = await startVigil({
    config: {
      gateway: { ssh: { listen_host: '127.0.0.1', listen_port: sshPort }, policy_file: policyFile },
      targets: [{ id: 'web-1', protocol: 'ssh', host: '127.0.0.1', port: sshd.port, user: TEST_USER, host_keys: [sshd.hostKey], private_key: { file: sshd.clientKeyFile } }],
    },
  });
});
after(async () => {
  if (vigil?.child.exitCode === null) await vigil.stop();
  await sshd?.stop();
});

test('a card number and an API key printed by the target (split across frames) and a card typed in a shell never reach ClickHouse', async () => {
  const token = await vigil.token('mallory', { groups: ['dev'] });
  const c = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    c.once('ready', () => resolve());
    c.once('error', reject);
    c.connect({ host: '127.0.0.1', port: sshPort, username: 'mallory@web-1', password: token, readyTimeout: 30_000 });
  });
  // exec: a script on the target prints each secret in two writes with a pause between, so the
  // gateway records two data frames; the command line itself holds no secret.
  const script = join(tempDir('vigil-target-'), 'print-secrets.sh');
  writeFileSync(script, `printf 'card: 4111 1111 '; sleep 0.4; printf '1111 1111\\n'; printf 'export KEY=${KEY_A}'; sleep 0.4; printf '${KEY_B}\\n'\n`);
  chmodSync(script, 0o644);
  chmodSync(dirname(script), 0o755);
  const printed = await new Promise<string>((resolve, reject) => {
    c.exec(`sh ${script}`, (err, ch) => {
      if (err) return reject(err);
      let out = '';
      ch.on('data', (d: Buffer) => (out += d));
      ch.on('close', () => resolve(out));
    });
  });
  assert.equal(printed, `card: 4111 1111 1111 1111\nexport KEY=${KEY_A}${KEY_B}\n`, 'the client received the secrets');

  const sh = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: 'xterm', cols: 80, rows: 24 }, (e, s) => (e ? reject(e) : resolve(s))));
  let out = '';
  sh.on('data', (d: Buffer) => (out += d));
  const wait = async (re: RegExp) => {
    for (let i = 0; i < 400 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 25));
    assert.match(out, re);
  };
  await wait(/\$ /);
  for (const ch of `echo paid ${CARD}\r`) {
    sh.write(ch);
    await new Promise((r) => setTimeout(r, 5));
  }
  await wait(new RegExp(`paid ${CARD}[\\s\\S]*paid ${CARD}`)); // the echo of the line, then its output
  const closed = new Promise<void>((r) => sh.once('close', () => r()));
  sh.write('exit\r');
  await closed;
  c.end();

  const analyst = await vigil.token('carol', { roles: ['analyst'] });
  const api = async (path: string) => fetch(`http://127.0.0.1:${vigil.apiPort}${path}`, { headers: { authorization: `Bearer ${analyst}` } });
  let sessionId = '';
  for (let i = 0; i < 300 && !sessionId; i++) {
    const items = ((await (await api('/api/sessions?sub=mallory')).json()) as { items: { session_id: string; end_reason: string }[] }).items;
    if (items[0]?.end_reason) sessionId = items[0].session_id;
    else await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(sessionId, 'the session landed');
  const cast = await (await api(`/api/sessions/${sessionId}/asciicast?version=2`)).text();
  assert.match(cast, /paid \[REDACTED:card\]/, 'the export (the shell channel) shows where a card was');
  assert.ok(!cast.replace(/\s+/g, '').includes(CARD));
  assert.equal(await vigil.stop(), 0, vigil.output());

  // The log (the audit record) holds the frames as sent, and at least one frame holds only part of a secret.
  const log = await LocalEventLog.open({ dir: join(vigil.dataDir, 'log'), read_only: true });
  const recorded = await collectSessions(log, (m) => m.has(sessionId));
  await log.close();
  const frames = recorded.get(sessionId)!.events.flatMap((e) => (e.type === 'frame' && e.direction === 's2c' ? [Buffer.from(e.data).toString('latin1')] : []));
  assert.ok(frames.some((f) => f.includes('4111 1111 ') && !f.includes('4111 1111 1111 1111')), 'a frame carries half a card');
  assert.ok(frames.some((f) => f.includes(KEY_A) && !f.includes(KEY_B)), 'a frame carries half a key');
  assert.equal(startedOf(recorded.get(sessionId)!)?.sub, 'mallory');

  const store = await openStore({ kind: 'chdb', path: join(vigil.dataDir, 'clickhouse') });
  try {
    const dump = async (table: string) => (await store.query({ query: `SELECT * FROM ${table} WHERE session_id = {id:String}`, query_params: { id: sessionId }, format: 'JSONEachRow' })).json<Record<string, unknown>>();
    const terminal = (await dump('terminal')) as { seq: number; code: string; channel: number; data: string }[];
    assert.ok(terminal.some((r) => r.code === 'o'), 'output rows stored');
    // Each direction and channel read as one stream, as a player (or a search) would see it.
    const streams = new Map<string, string>();
    for (const r of terminal.sort((a, b) => a.seq - b.seq)) {
      const k = `${r.code}/${r.channel}`;
      streams.set(k, (streams.get(k) ?? '') + (r.code === 'o' || r.code === 'i' ? Buffer.from(r.data, 'base64').toString('latin1') : r.data));
    }
    const everything = [...streams.values(), JSON.stringify(await dump('terminal_snapshots')), JSON.stringify(await dump('commands')), JSON.stringify(await dump('events'))];
    for (const text of everything) {
      const squeezed = text.replace(/[\s\r\n]+/g, '');
      assert.ok(!squeezed.includes(CARD), `a card in ${text.slice(0, 300)}`);
      assert.ok(!text.includes(KEY_A) && !text.includes(KEY_B), `a key (or half of one) in ${text.slice(0, 300)}`);
    }
    const output = [...streams.entries()].filter(([k]) => k.startsWith('o/')).map(([, v]) => v).join('');
    assert.match(output, /card: \[REDACTED:card\]\n/);
    assert.match(output, /export KEY=\[REDACTED:api_key\]\n/);
    assert.match(output, /paid \[REDACTED:card\]/);
    const commands = (await dump('commands')) as { line: string }[];
    assert.ok(commands.some((r) => r.line === 'echo paid [REDACTED:card]'), JSON.stringify(commands));
  } finally {
    await releaseStore(store);
  }
});
