/**
 * Bad input against the SSH gateway (real sshd behind it): wrong tokens, malformed and unknown
 * login names, an unpinned target host key, 1,000 channels on one connection, a window-change
 * flood. Each gets a clear, protocol-correct refusal and an event; the gateway keeps serving others.
 * Credential custody: the target's password and private key appear in no record and no log line.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientChannel } from 'ssh2';
import ssh2 from 'ssh2';
import type { ChainedEvent, SshChannel, SshRequest } from '@vigil/schemas';
import { startSshd, startSshHarness, connectClient, execCollect, until, TEST_PASSWORD, TEST_USER, type Sshd, type SshHarness } from './testkit.ts';

let sshd: Sshd;
let h: SshHarness;
const ENV = { VIGIL_TEST_SSH_PASSWORD: TEST_PASSWORD };

before(async () => {
  sshd = await startSshd();
  const otherKey = ssh2.utils.generateKeyPairSync('ed25519');
  const otherPub = otherKey.public.trim();
  h = await startSshHarness(sshd, {
    env: ENV,
    ssh: { max_channels_per_session: 10, max_auth_attempts: 2 },
    targets: [
      { id: 'web-1', protocol: 'ssh', host: '127.0.0.1', port: sshd.port, user: TEST_USER, host_keys: [sshd.hostKey], private_key: { file: sshd.clientKeyFile } },
      { id: 'web-pw', protocol: 'ssh', host: '127.0.0.1', port: sshd.port, user: TEST_USER, host_keys: [sshd.hostKey], password: { env: 'VIGIL_TEST_SSH_PASSWORD' } },
      { id: 'web-unpinned', protocol: 'ssh', host: '127.0.0.1', port: sshd.port, user: TEST_USER, host_keys: [otherPub], private_key: { file: sshd.clientKeyFile } },
    ],
  });
});
after(async () => {
  await h?.close();
  await sshd?.stop();
});

/** Connect and expect a failure; returns the client error. */
async function refused(opts: { username: string; password: string }): Promise<Error & { level?: string; description?: string; reason?: number }> {
  const c = new ssh2.Client();
  return new Promise((resolve) => {
    c.on('ready', () => {
      c.end();
      resolve(Object.assign(new Error('unexpectedly connected'), { level: 'none' }));
    });
    c.on('error', (err) => resolve(err as Error & { level?: string }));
    c.connect({ host: '127.0.0.1', port: h.port, username: opts.username, password: opts.password, tryKeyboard: false, readyTimeout: 20_000 });
  });
}

function authFailures(): Extract<ChainedEvent, { type: 'auth.failed' }>[] {
  return h.events().filter((e): e is Extract<ChainedEvent, { type: 'auth.failed' }> => e.type === 'auth.failed');
}

async function stillServes(sub: string): Promise<void> {
  const c = await connectClient(h, { sub });
  const r = await execCollect(c, 'echo alive');
  assert.equal(r.stdout.toString(), 'alive\n');
  c.end();
}

test('wrong tokens: USERAUTH_FAILURE, auth.failed with a code (never the token), disconnect after max_auth_attempts', async () => {
  const foreign = await h.issuer.mintForeign('mallory');
  const err = await refused({ username: 'mallory@web-1', password: foreign });
  assert.equal(err.level, 'client-authentication');
  await until(() => authFailures().some((e) => e.claimed_user === 'mallory@web-1'), 'auth.failed');
  const ev = authFailures().find((e) => e.claimed_user === 'mallory@web-1')!;
  assert.equal(ev.code, 'GW_ERR_TOKEN_SIGNATURE');
  assert.equal(ev.target_id, 'web-1');
  const none = h.issuer.mintNone('mallory2');
  await refused({ username: 'mallory2@web-1', password: none });
  await until(() => authFailures().some((e) => e.claimed_user === 'mallory2@web-1' && e.code === 'GW_ERR_TOKEN_ALGORITHM'), 'alg none refused');
  // A valid token for someone else: the sub must match the user name.
  await refused({ username: 'bob@web-1', password: await h.issuer.mint('alice') });
  await until(() => authFailures().some((e) => e.claimed_user === 'bob@web-1' && e.code === 'GW_ERR_SUB_MISMATCH'), 'sub mismatch');
  const text = h.producer.records.map((r) => r.value.toString('latin1')).join('\n') + JSON.stringify(h.logs);
  assert.ok(!text.includes(foreign), 'the token is never recorded');
  await stillServes('after-bad-token');
});

test('malformed and unknown login names: disconnected with ILLEGAL_USER_NAME, recorded', async () => {
  const token = await h.issuer.mint('alice');
  const e1 = await refused({ username: 'alice', password: token });
  assert.match(e1.message, /ILLEGAL_USER_NAME/, "SSH_MSG_DISCONNECT reason 15 reaches the client");
  await until(() => authFailures().some((e) => e.claimed_user === 'alice' && e.code === 'GW_ERR_SSH_LOGIN_NAME'), 'login name refused');
  const e2 = await refused({ username: 'alice@no-such-host', password: token });
  assert.match(e2.message, /ILLEGAL_USER_NAME/);
  await until(() => authFailures().some((e) => e.claimed_user === 'alice@no-such-host' && e.code === 'GW_ERR_UNKNOWN_TARGET'), 'unknown target');
  await stillServes('after-bad-name');
});

test('unpinned target host key: the gateway refuses to log in, the client is told, nothing is relayed', async () => {
  const err = await refused({ username: 'alice@web-unpinned', password: await h.issuer.mint('alice') });
  assert.notEqual(err.level, 'none');
  await until(() => h.events().some((e) => e.type === 'protocol.refused' && e.code === 'GW_ERR_SSH_HOST_KEY_MISMATCH'), 'host key refusal');
  const ev = h.events().find((e) => e.type === 'protocol.refused' && e.code === 'GW_ERR_SSH_HOST_KEY_MISMATCH')!;
  assert.equal(ev.target_id, 'web-unpinned');
  assert.ok(!h.events().some((e) => e.type === 'session.started' && e.target_id === 'web-unpinned'));
  await stillServes('after-unpinned');
});

test('1,000 channels on one connection: 10 open, 990 refused (RESOURCE_SHORTAGE) with events; others unaffected', async () => {
  const c = await connectClient(h, { sub: 'channel-hog' });
  const results = await Promise.all(
    Array.from({ length: 1000 }, () =>
      new Promise<'open' | 'refused'>((resolve) => {
        c.exec('sleep 1', (err, ch) => {
          if (err) return resolve('refused');
          ch.on('close', () => {});
          ch.resume();
          resolve('open');
        });
      }),
    ),
  );
  assert.equal(results.filter((r) => r === 'open').length, 10);
  assert.equal(results.filter((r) => r === 'refused').length, 990);
  await stillServes('beside-the-hog');
  const [sid] = h.sessionsOf('channel-hog');
  const refusals = h.session(sid!).events.filter((e): e is SshChannel => e.type === 'ssh.channel' && e.action === 'refused');
  assert.equal(refusals.length, 990);
  assert.ok(refusals.every((e) => e.code === 'GW_ERR_SSH_CHANNEL_LIMIT'));
  // Slots free up again once channels close.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await execCollect(c, 'echo again')).stdout.toString(), 'again\n');
  c.end();
  assert.ok(h.session(sid!).chainOk);
});

test('window-change flood: damped, the last size wins, every request accounted for', async () => {
  const c = await connectClient(h, { sub: 'resizer' });
  const ch = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: 'xterm', cols: 80, rows: 24 }, (err, s) => (err ? reject(err) : resolve(s))));
  let out = '';
  ch.on('data', (d: Buffer) => (out += d));
  await until(() => out.includes('$ '), 'prompt');
  const N = 20_000;
  for (let i = 0; i < N - 1; i++) ch.setWindow(10 + (i % 50), 20 + (i % 100), 0, 0);
  ch.setWindow(33, 77, 0, 0);
  await stillServes('beside-the-flood');
  await new Promise((r) => setTimeout(r, 300));
  ch.write('stty size\r');
  await until(() => /33 77/.test(out), 'final size applied');
  ch.end('exit\r');
  c.end();
  const [sid] = h.sessionsOf('resizer');
  await until(() => h.session(sid!).events.some((e) => e.type === 'session.ended'), 'ended');
  const resizes = h.session(sid!).events.filter((e): e is SshRequest => e.type === 'ssh.request' && e.request === 'window-change');
  const accounted = resizes.length + resizes.reduce((n, e) => n + (e.coalesced ?? 0), 0);
  assert.equal(accounted, N, 'each window-change is either forwarded (an event) or counted as coalesced');
  assert.ok(resizes.length < N / 10, `damped: ${resizes.length} forwarded`);
  assert.deepEqual([resizes.at(-1)!.rows, resizes.at(-1)!.cols], [33, 77]);
});

test('credential custody: password and private key of the targets appear nowhere in records or logs', async () => {
  const c = await connectClient(h, { sub: 'custody', target: 'web-pw' });
  const r = await execCollect(c, 'id -un');
  assert.equal(r.stdout.toString(), `${TEST_USER}\n`);
  c.end();
  const c2 = await connectClient(h, { sub: 'custody' });
  await execCollect(c2, 'true');
  c2.end();
  await h.sink.drain();
  const keyBody = sshd.clientKeyText.split('\n').filter((l) => l && !l.startsWith('-----'));
  const haystacks = [
    ...h.producer.records.map((r) => Buffer.concat([Buffer.from(r.key), r.value]).toString('latin1')),
    JSON.stringify(h.logs),
    JSON.stringify(h.gw.metrics),
  ];
  for (const hay of haystacks) {
    assert.ok(!hay.includes(TEST_PASSWORD), 'target password leaked');
    for (const line of keyBody) assert.ok(!hay.includes(line), 'private key material leaked');
  }
  assert.ok(h.sessionsOf('custody').length === 2);
});
