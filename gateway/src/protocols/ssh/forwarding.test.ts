/**
 * Remote (ssh -R), agent (ssh -A) and X11 (ssh -X) forwarding through the gateway against a real
 * sshd (AllowTcpForwarding, AllowAgentForwarding, X11Forwarding on): refused by default, each
 * refusal an event; allowed by a policy rule, relayed, every byte recorded as frames with
 * ssh.channel open/closed events. Clients: ssh2 and the real OpenSSH client with a real ssh-agent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientChannel } from 'ssh2';
import type { ChainedEvent, SshChannel } from '@vigil/schemas';
import { startSshd, startSshHarness, connectClient, execCollect, knownHostsLine, until, type Sshd, type SshHarness, type SshClient } from './testkit.ts';

const run = promisify(execFile);

const POLICY = `version: 1
rules:
  - id: forwarding-for-sre
    match: { groups: [sre], channels: [tcpip-forward, agent, x11] }
    allow: true
`;

let sshd: Sshd;
let h: SshHarness;
let dir: string;
let agentPid: number | undefined;
let agentSock = '';
let userKey = { file: '', pub: '' };
let plainKey = { file: '', pub: '' };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-ssh-fwd-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'agent-key@test', '-f', join(dir, 'user_key')]);
  userKey = { file: join(dir, 'user_key'), pub: readFileSync(join(dir, 'user_key.pub'), 'utf8').trim() };
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'plain-key@test', '-f', join(dir, 'plain_key')]);
  plainKey = { file: join(dir, 'plain_key'), pub: readFileSync(join(dir, 'plain_key.pub'), 'utf8').trim() };
  sshd = await startSshd();
  h = await startSshHarness(sshd, { policy_file: join(dir, 'policy.yaml'), ssh: { public_keys: [{ key: userKey.pub, sub: 'sre-key', groups: ['sre'] }, { key: plainKey.pub, sub: 'plain-key' }] } });
});
after(async () => {
  if (agentPid) process.kill(agentPid, 'SIGTERM');
  await h?.close();
  await sshd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sre = async (sub: string): Promise<SshClient> => connectClient(h, { sub, password: await h.issuer.mint(sub, { groups: ['sre'] }) });

function channels(sid: string): SshChannel[] {
  return h.session(sid).events.filter((e): e is SshChannel => e.type === 'ssh.channel');
}
function frames(sid: string, n: number, direction: 'c2s' | 's2c'): Buffer {
  return Buffer.concat(h.session(sid).events.filter((e): e is Extract<ChainedEvent, { type: 'frame' }> => e.type === 'frame' && e.direction === direction && e.msg_type === `SSH_MSG_CHANNEL_DATA/${n}`).map((e) => Buffer.from(e.data)));
}

test('remote forwarding (tcpip-forward) is refused by default, with an event', async () => {
  const c = await connectClient(h, { sub: 'no-fwd' });
  const err = await new Promise<Error | undefined>((resolve) => c.forwardIn('127.0.0.1', 0, (e) => resolve(e)));
  assert.ok(err, 'tcpip-forward refused');
  c.end();
  const [sid] = h.sessionsOf('no-fwd');
  await until(() => channels(sid!).some((e) => e.action === 'refused' && e.kind === 'tcpip-forward' && e.code === 'GW_ERR_SSH_FORWARDING_REFUSED'), 'refusal event');
});

test('remote forwarding allowed by a rule: the target listens, its connections reach the client, recorded', async () => {
  const c = await sre('rfwd-user');
  const port = await new Promise<number>((resolve, reject) => c.forwardIn('127.0.0.1', 0, (e, p) => (e ? reject(e) : resolve(p))));
  assert.ok(port > 0);
  // The client answers each forwarded connection with what it got, upper-cased.
  c.on('tcp connection', (info, accept) => {
    assert.equal(info.destPort, port);
    const ch = accept();
    ch.on('data', (d: Buffer) => ch.end(d.toString().toUpperCase()));
  });
  // A program on the target's host connects to the port sshd listens on (loopback here).
  const reply = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write('ping-over-R'));
    let got = '';
    sock.on('data', (d) => (got += d));
    sock.on('end', () => resolve(got));
    sock.on('error', reject);
  });
  assert.equal(reply, 'PING-OVER-R');
  await new Promise<void>((resolve, reject) => c.unforwardIn('127.0.0.1', port, (e) => (e ? reject(e) : resolve())));
  await assert.rejects(new Promise((resolve, reject) => net.connect(port, '127.0.0.1', () => resolve(undefined)).on('error', reject)), /ECONNREFUSED/);
  c.end();
  const [sid] = h.sessionsOf('rfwd-user');
  await until(() => h.session(sid!).events.some((e) => e.type === 'session.ended'), 'ended');
  const ev = channels(sid!);
  assert.ok(ev.some((e) => e.action === 'open' && e.kind === 'tcpip-forward' && e.port === port && e.rule_id === 'forwarding-for-sre'));
  assert.ok(ev.some((e) => e.action === 'closed' && e.kind === 'tcpip-forward' && e.port === port));
  const opened = ev.find((e) => e.action === 'open' && e.kind === 'forwarded-tcpip');
  assert.ok(opened && opened.channel !== undefined);
  assert.ok(ev.some((e) => e.action === 'closed' && e.kind === 'forwarded-tcpip' && e.channel === opened.channel));
  assert.equal(frames(sid!, opened.channel!, 's2c').toString(), 'ping-over-R');
  assert.equal(frames(sid!, opened.channel!, 'c2s').toString(), 'PING-OVER-R');
  assert.ok(h.session(sid!).chainOk);
});

for (const compress of ['none', 'zlib@openssh.com'] as const) test(`the session ends while a forwarded connection is open (compression ${compress}): its closed event is recorded before session.ended`, async () => {
  const sub = `rfwd-open-${compress.replace(/\W/g, '')}`;
  const c = await connectClient(h, { sub, password: await h.issuer.mint(sub, { groups: ['sre'] }), algorithms: { compress: [compress] } });
  const port = await new Promise<number>((resolve, reject) => c.forwardIn('127.0.0.1', 0, (e, p) => (e ? reject(e) : resolve(p))));
  const accepted = new Promise<void>((resolve) => c.on('tcp connection', (_info, accept) => (accept(), resolve())));
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  await accepted;
  const [sid] = h.sessionsOf(sub);
  await until(() => channels(sid!).some((e) => e.action === 'open' && e.kind === 'forwarded-tcpip'), 'forwarded channel open');
  // The client goes away with the channel still open: no close for it comes over the wire (and,
  // compressed, ssh2 has already torn down the connection's zlib state when the gateway closes it).
  c.end();
  await until(() => h.session(sid!).events.some((e) => e.type === 'session.ended'), 'ended');
  sock.destroy();
  const events = h.session(sid!).events;
  const opened = channels(sid!).find((e) => e.action === 'open' && e.kind === 'forwarded-tcpip')!;
  const closedAt = events.findIndex((e) => e.type === 'ssh.channel' && e.action === 'closed' && e.kind === 'forwarded-tcpip' && e.channel === opened.channel);
  assert.ok(closedAt >= 0, 'the forwarded channel has its closed event');
  assert.ok(closedAt < events.findIndex((e) => e.type === 'session.ended'), 'before session.ended');
  assert.ok(h.session(sid!).chainOk);
  // The gateway is still serving.
  const next = await sre(`${sub}-after`);
  assert.equal((await execCollect(next, 'echo still-here')).stdout.toString(), 'still-here\n');
  next.end();
});

function x11Exec(c: SshClient, onX11: (ch: ClientChannel) => void): Promise<{ out: string; err?: Error }> {
  // The command connects to $DISPLAY (sshd's X11 listener), sends a greeting and prints the answer.
  const cmd = 'n=${DISPLAY#*:}; n=${n%.*}; exec 3<>/dev/tcp/127.0.0.1/$((6000+n)); printf x11-hello >&3; head -c 8 <&3';
  c.on('x11', (_info, accept) => {
    const ch = accept();
    onX11(ch);
  });
  return new Promise((resolve) =>
    c.exec(cmd, { x11: true }, (e, ch) => {
      if (e) return resolve({ out: '', err: e });
      let out = '';
      ch.on('data', (d: Buffer) => (out += d));
      ch.stderr.resume();
      ch.on('close', () => resolve({ out }));
    }),
  );
}

test('X11 refused by default; allowed by a rule, the target X client reaches the caller X server', async () => {
  const plain = await connectClient(h, { sub: 'x11-denied' });
  const denied = await x11Exec(plain, () => assert.fail('no x11 channel may open'));
  assert.ok(denied.err, 'x11-req refused, so ssh2 fails the exec');
  plain.end();
  const [dsid] = h.sessionsOf('x11-denied');
  await until(() => h.session(dsid!).events.some((e) => e.type === 'ssh.request' && e.request === 'x11-req' && !e.accepted && e.code === 'GW_ERR_SSH_FORWARDING_REFUSED'), 'x11 refusal');

  const c = await sre('x11-user');
  const r = await x11Exec(c, (ch) => ch.once('data', (d: Buffer) => ch.write(`X:${d.toString().slice(0, 6)}`)));
  assert.equal(r.err, undefined);
  assert.equal(r.out, 'X:x11-he');
  c.end();
  const [sid] = h.sessionsOf('x11-user');
  await until(() => h.session(sid!).events.some((e) => e.type === 'session.ended'), 'ended');
  const x = channels(sid!).find((e) => e.action === 'open' && e.kind === 'x11');
  assert.ok(x, 'x11 channel recorded');
  assert.equal(frames(sid!, x.channel!, 's2c').toString(), 'x11-hello');
  assert.equal(frames(sid!, x.channel!, 'c2s').toString(), 'X:x11-he');
  assert.ok(h.session(sid!).events.some((e) => e.type === 'ssh.request' && e.request === 'x11-req' && e.accepted && e.rule_id === 'forwarding-for-sre'));
  // The client's (fake) cookie is not recorded.
  assert.doesNotMatch(JSON.stringify(h.session(sid!).events), /MIT-MAGIC-COOKIE-1/);
});

async function startAgent(): Promise<void> {
  agentSock = join(dir, 'agent.sock');
  const child = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
  agentPid = child.pid;
  for (let i = 0; i < 100; i++) {
    try {
      await run('ssh-add', [userKey.file], { env: { ...process.env, SSH_AUTH_SOCK: agentSock } });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error('ssh-agent did not start');
}

test('agent forwarding with the real OpenSSH client and ssh-agent: refused by default, relayed when allowed', async () => {
  await startAgent();
  const kh = join(dir, 'known_hosts');
  writeFileSync(kh, knownHostsLine(h));
  const fp = execFileSync('ssh-keygen', ['-l', '-f', `${userKey.file}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  const ssh = (user: string, cmd: string, key = userKey.file) =>
    run('ssh', ['-F', '/dev/null', '-A', '-p', String(h.port), '-o', 'IdentitiesOnly=yes', '-i', key, '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${kh}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', `${user}@127.0.0.1`, cmd], {
      env: { ...process.env, SSH_AUTH_SOCK: agentSock },
      timeout: 30_000,
    }).catch((e: { stdout: string; stderr: string; code: number }) => e);
  // The key holder logs in by key (mapped to sre-key, group sre): the target sees the forwarded agent.
  const ok = await ssh('sre-key@web-1', 'ssh-add -l');
  assert.match(ok.stdout, new RegExp(fp.replace(/[+/]/g, '\\$&')), `agent listing: ${ok.stdout} ${ok.stderr}`);
  const [sid] = h.sessionsOf('sre-key');
  await until(() => h.session(sid!).events.some((e) => e.type === 'session.ended'), 'ended');
  const ev = channels(sid!);
  const a = ev.find((e) => e.action === 'open' && e.kind === 'auth-agent@openssh.com');
  assert.ok(a, 'agent channel recorded');
  assert.ok(frames(sid!, a.channel!, 's2c').length > 0, 'the request from the target is recorded');
  assert.ok(frames(sid!, a.channel!, 'c2s').length > 0, 'the agent answer is recorded');
  assert.ok(ev.some((e) => e.action === 'closed' && e.kind === 'auth-agent@openssh.com'));

  // A caller without the rule: the request is refused (OpenSSH goes on without the agent).
  const no = await ssh('plain-key@web-1', 'ssh-add -l', plainKey.file);
  assert.match(no.stderr + no.stdout, /Could not open a connection to your authentication agent|Error connecting to agent/);
  const [asid] = h.sessionsOf('plain-key');
  await until(() => h.session(asid!).events.some((e) => e.type === 'ssh.request' && e.request === 'auth-agent-req@openssh.com' && !e.accepted && e.code === 'GW_ERR_SSH_FORWARDING_REFUSED'), 'agent refusal');
  assert.ok(!channels(asid!).some((e) => e.kind === 'auth-agent@openssh.com' && e.action === 'open'));
  // Agent traffic carries public keys and signatures, never the private key.
  const body = readFileSync(userKey.file, 'utf8').split('\n').slice(1, 3).join('');
  for (const r of h.producer.records) assert.ok(!r.value.includes(Buffer.from(body.slice(0, 40))), 'private key material recorded');
});
