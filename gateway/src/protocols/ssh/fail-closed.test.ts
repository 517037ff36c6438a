/**
 * Fail closed over SSH: once the event log fails for good, live SSH sessions are disconnected
 * (SERVICE_NOT_AVAILABLE) and new ones are refused before anything is relayed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import ssh2, { type ClientChannel } from 'ssh2';
import { LogError } from '@vigil/eventlog/types';
import { startSshd, startSshHarness, connectClient, until, type Sshd, type SshHarness } from './testkit.ts';

let sshd: Sshd;
let h: SshHarness;

before(async () => {
  sshd = await startSshd();
  h = await startSshHarness(sshd);
});
after(async () => {
  await h?.close();
  await sshd?.stop();
});

test('the log fails: the live session is ended, a new one is refused with SERVICE_NOT_AVAILABLE', async () => {
  const c = await connectClient(h, { sub: 'live' });
  const ch = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: 'xterm', cols: 80, rows: 24 }, (e, s) => (e ? reject(e) : resolve(s))));
  let out = '';
  ch.on('data', (d: Buffer) => (out += d));
  await until(() => out.includes('$ '), 'prompt');
  const gone = new Promise<void>((r) => c.once('close', () => r()));
  h.producer.failWith = new LogError('LOG_ERR_IO', 'disk gone', false);
  ch.write('echo unrecorded\r'); // its frame cannot be made durable → failure latched
  await until(() => h.sink.failure !== undefined, 'sink failure');
  await gone;

  const err = await new Promise<Error>((resolve) => {
    const c2 = new ssh2.Client();
    c2.on('ready', () => resolve(new Error('connected')));
    c2.on('error', resolve);
    c2.connect({ host: '127.0.0.1', port: h.port, username: 'late@web-1', password: 'irrelevant', tryKeyboard: false, readyTimeout: 20_000 });
  });
  assert.match(err.message, /SERVICE_NOT_AVAILABLE/);
  assert.equal(h.gw.activeSessions(), 0);
});
