/**
 * The SSH gateway against a real OpenSSH server: exec, shell with a PTY, env, resize, signals,
 * exit status; every byte each side sent and received equals the recorded frames; the chain holds.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { validateEvent, type ChainedEvent, type SshRequest } from '@vigil/schemas';
import { startSshd, startSshHarness, connectClient, execCollect, framesOf, until, type Sshd, type SshHarness } from './testkit.ts';

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

function ended(sid: string): boolean {
  return h.session(sid).events.some((e) => e.type === 'session.ended');
}

test('exec: output, stderr, exit status and stdin reach both sides and are recorded exactly', async () => {
  const c = await connectClient(h, { sub: 'exec-user' });
  const input = randomBytes(200_000);
  const r = await execCollect(c, 'sha256sum; echo to-stderr >&2; exit 7', input);
  const sum = (await import('node:crypto')).createHash('sha256').update(input).digest('hex');
  assert.equal(r.stdout.toString().split(' ')[0], sum);
  assert.equal(r.stderr.toString(), 'to-stderr\n');
  assert.equal(r.code, 7);
  c.end();
  const [sid] = h.sessionsOf('exec-user');
  assert.ok(sid);
  await until(() => ended(sid!), 'session.ended');
  const s = h.session(sid!);
  assert.ok(s.chainOk, s.problem);
  for (const e of s.events) assert.deepEqual(validateEvent(e), [], `${e.type} validates`);
  // Exactness: what the client sent (stdin) and received (stdout, stderr) are the recorded frames.
  assert.ok(framesOf(s.events, 'c2s', 'SSH_MSG_CHANNEL_DATA/').equals(input));
  assert.ok(framesOf(s.events, 's2c', 'SSH_MSG_CHANNEL_DATA/').equals(r.stdout));
  assert.ok(framesOf(s.events, 's2c', 'SSH_MSG_CHANNEL_EXTENDED_DATA/').equals(r.stderr));
  const reqs = s.events.filter((e): e is SshRequest => e.type === 'ssh.request');
  assert.ok(reqs.some((e) => e.request === 'exec' && e.accepted && e.command === 'sha256sum; echo to-stderr >&2; exit 7'));
  assert.ok(reqs.some((e) => e.request === 'exit-status' && e.exit_status === 7 && e.direction === 's2c'));
  const started = s.events.find((e) => e.type === 'session.started') as Extract<ChainedEvent, { type: 'session.started' }>;
  assert.equal(started.protocol, 'ssh');
  assert.equal(started.target_id, 'web-1');
  assert.equal(started.login, 'vigil-ssh-test');
  assert.equal(started.sub, 'exec-user');
});

test('shell with a PTY: term, size, env, window-change reach the target; exactness of both streams', async () => {
  const c = await connectClient(h, { sub: 'shell-user' });
  const ch = await new Promise<ClientChannel>((resolve, reject) =>
    c.shell({ term: 'xterm-256color', cols: 91, rows: 27, width: 0, height: 0 }, { env: { LANG: 'C.UTF-8', VIGIL_MARK: 'm42' } }, (err, s) => (err ? reject(err) : resolve(s))),
  );
  const received: Buffer[] = [];
  const sent: Buffer[] = [];
  ch.on('data', (d: Buffer) => received.push(d));
  const send = (s: string): void => {
    const b = Buffer.from(s);
    sent.push(b);
    ch.write(b);
  };
  const screen = (): string => Buffer.concat(received).toString();
  await until(() => screen().includes('$ '), 'prompt');
  send('echo "T=$TERM M=$VIGIL_MARK"; stty size\r');
  await until(() => /T=xterm-256color M=m42/.test(screen()) && /27 91/.test(screen()), 'term, env and size');
  ch.setWindow(40, 120, 0, 0);
  await new Promise((r) => setTimeout(r, 200));
  send('stty size\r');
  await until(() => /40 120/.test(screen()), 'resized');
  const closed = new Promise<void>((r) => ch.once('close', () => r()));
  let exitCode: number | undefined;
  ch.on('exit', (code: number) => (exitCode = code));
  send('exit 3\r');
  await closed;
  assert.equal(exitCode, 3);
  c.end();
  const [sid] = h.sessionsOf('shell-user');
  await until(() => ended(sid!), 'session.ended');
  const s = h.session(sid!);
  assert.ok(s.chainOk, s.problem);
  assert.ok(framesOf(s.events, 'c2s').equals(Buffer.concat(sent)), 'client→gateway bytes = recorded c2s');
  assert.ok(framesOf(s.events, 's2c').equals(Buffer.concat(received)), 'gateway→client bytes = recorded s2c');
  const reqs = s.events.filter((e): e is SshRequest => e.type === 'ssh.request');
  const pty = reqs.find((e) => e.request === 'pty-req');
  assert.equal(pty?.term, 'xterm-256color');
  assert.equal(pty?.cols, 91);
  assert.ok(reqs.some((e) => e.request === 'env' && e.name === 'VIGIL_MARK' && e.value === 'm42'));
  assert.ok(reqs.some((e) => e.request === 'window-change' && e.cols === 120 && e.rows === 40));
  assert.ok(reqs.some((e) => e.request === 'exit-status' && e.exit_status === 3));
});

test('signal: INT reaches the remote command', async () => {
  const c = await connectClient(h, { sub: 'signal-user' });
  const result = await new Promise<{ code: number | null; signal?: string; out: string }>((resolve, reject) => {
    c.exec('trap "echo got-int; exit 42" INT; echo ready; sleep 30 & wait', { pty: true }, (err, ch) => {
      if (err) return reject(err);
      let out = '';
      let code: number | null = null;
      let signal: string | undefined;
      ch.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('ready') && !out.includes('sent')) {
          out += '(sent)';
          ch.signal('INT');
        }
      });
      ch.on('exit', (c0: number | null, s?: string) => {
        code = c0;
        signal = s;
      });
      ch.on('close', () => resolve({ code, ...(signal ? { signal } : {}), out }));
    });
  });
  assert.match(result.out, /got-int/);
  assert.equal(result.code, 42);
  c.end();
  const [sid] = h.sessionsOf('signal-user');
  await until(() => ended(sid!), 'session.ended');
  assert.ok(h.session(sid!).events.some((e) => e.type === 'ssh.request' && e.request === 'signal' && e.signal === 'INT'));
});

test('a compressed client leaves with a shell open: the channel and the session end recorded, the gateway keeps serving', async () => {
  const c = await connectClient(h, { sub: 'zlib-user', algorithms: { compress: ['zlib@openssh.com'] } });
  const ch = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: 'xterm', cols: 80, rows: 24 }, (e, s) => (e ? reject(e) : resolve(s))));
  let out = '';
  ch.on('data', (d: Buffer) => (out += d));
  ch.write('echo zlib-$((20+22))\r');
  await until(() => out.includes('zlib-42'), 'output through the compressed connection');
  // Gone without closing the channel: the gateway closes it toward a connection ssh2 already tore down.
  c.end();
  const [sid] = h.sessionsOf('zlib-user');
  await until(() => ended(sid!), 'session.ended');
  const events = h.session(sid!).events;
  assert.ok(events.some((e) => e.type === 'ssh.channel' && e.action === 'closed' && e.kind === 'session'));
  assert.ok(h.session(sid!).chainOk);
  // Give any deferred close callback time to run (a throw there would be an uncaught exception).
  await new Promise((r) => setTimeout(r, 300));
  const next = await connectClient(h, { sub: 'zlib-after' });
  assert.equal((await execCollect(next, 'echo still-here')).stdout.toString(), 'still-here\n');
  next.end();
});
