/**
 * Command policy through the SSH gateway against a real sshd: exec commands (exact), interactive
 * lines (typed with backspace, Ctrl-U, Ctrl-W, pasted with bracketed paste; ssh2 and the real
 * OpenSSH client under tmux), require_approval without an approval service (refused; with one:
 * approval.test.ts), forwarding
 * refused by default and allowed by a rule, SFTP recorded when allowed and refused by policy.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import type { ChainedEvent, PolicyBlocked, SshFile } from '@vigil/schemas';
import { startSshd, startSshHarness, connectClient, execCollect, framesOf, until, sshInTmux, type Sshd, type SshHarness, type SshClient } from './testkit.ts';

const POLICY = `version: 1
rules:
  - id: no-rm-rf
    match: { commands: ["rm -rf *", "rm -fr *"] }
    block: { message: recursive force delete is not allowed }
  - id: shutdown-needs-approval
    match: { commands: ["shutdown*", "reboot*"] }
    require_approval: { approver_groups: [sre] }
  - id: no-file-transfer-for-interns
    match: { groups: [intern], channels: [sftp, scp] }
    block: true
  - id: tunnels-for-sre
    match: { groups: [sre], channels: [direct-tcpip] }
    allow: true
`;

let sshd: Sshd;
let h: SshHarness;
let policyDir: string;
const WORK = `/tmp/vigil-ssh-policy-${process.pid}`;

before(async () => {
  sshd = await startSshd();
  policyDir = mkdtempSync(join(tmpdir(), 'vigil-ssh-policy-'));
  writeFileSync(join(policyDir, 'policy.yaml'), POLICY);
  h = await startSshHarness(sshd, { policy_file: join(policyDir, 'policy.yaml') });
  const c = await connectClient(h, { sub: 'setup' });
  await execCollect(c, `mkdir -p ${WORK}/victim && touch ${WORK}/victim/f`);
  c.end();
});
after(async () => {
  const c = await connectClient(h, { sub: 'teardown' }).catch(() => undefined);
  if (c) {
    await execCollect(c, `rm -r ${WORK}`);
    c.end();
  }
  await h?.close();
  await sshd?.stop();
  rmSync(policyDir, { recursive: true, force: true });
});

function blocked(): PolicyBlocked[] {
  return h.events().filter((e): e is PolicyBlocked => e.type === 'policy.blocked');
}

async function victimExists(dir = 'victim'): Promise<boolean> {
  const c = await connectClient(h, { sub: 'checker' });
  const r = await execCollect(c, `test -f ${WORK}/${dir}/f && echo yes || echo no`);
  c.end();
  return r.stdout.toString().trim() === 'yes';
}

test('exec: a blocked command never runs; the client gets the reason on stderr and exit status 126', async () => {
  const c = await connectClient(h, { sub: 'exec-blocked' });
  const r = await execCollect(c, `rm -rf ${WORK}/victim`);
  assert.equal(r.code, 126);
  assert.match(r.stderr.toString(), /vigil: command blocked: recursive force delete is not allowed \(policy rule "no-rm-rf"\)/);
  // A segment of a list is judged too; blank runs do not dodge the pattern.
  const r2 = await execCollect(c, `cd ${WORK} && rm   -rf victim`);
  assert.equal(r2.code, 126);
  const ok = await execCollect(c, 'echo allowed');
  assert.equal(ok.stdout.toString(), 'allowed\n');
  c.end();
  assert.ok(await victimExists());
  const ev = blocked().filter((e) => e.sub === 'exec-blocked');
  assert.equal(ev.length, 2);
  assert.equal(ev[0]!.protocol_kind, 'ssh_exec');
  assert.equal(ev[0]!.statement, `rm -rf ${WORK}/victim`);
  assert.equal(ev[0]!.rule_id, 'no-rm-rf');
  assert.equal(ev[0]!.target_id, 'web-1');
});

test('exec: require_approval without an approval service is refused, and says so', async () => {
  const c = await connectClient(h, { sub: 'approver-less' });
  const r = await execCollect(c, 'shutdown -h now');
  assert.equal(r.code, 126);
  assert.match(r.stderr.toString(), /requires approval by policy rule "shutdown-needs-approval", and this gateway cannot hold it for approval/);
  c.end();
  await until(() => blocked().some((e) => e.sub === 'approver-less' && e.action === 'require_approval'), 'policy.blocked require_approval');
});

async function shell(c: SshClient): Promise<{ ch: ClientChannel; screen(): string; sent: Buffer[]; received: Buffer[]; send(s: string): void }> {
  const ch = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: 'xterm', cols: 120, rows: 30 }, (err, s) => (err ? reject(err) : resolve(s))));
  const received: Buffer[] = [];
  const sent: Buffer[] = [];
  ch.on('data', (d: Buffer) => received.push(d));
  return {
    ch,
    sent,
    received,
    screen: () => Buffer.concat(received).toString(),
    send(s) {
      const b = Buffer.from(s);
      sent.push(b);
      ch.write(b);
    },
  };
}

test('shell: edited, pasted and continued lines are reconstructed and blocked at Enter; the shell goes on', async () => {
  const c = await connectClient(h, { sub: 'shell-blocked' });
  const sh = await shell(c);
  await until(() => sh.screen().includes('$ '), 'prompt');
  const cases = [
    `rm -rx\x7ff ${WORK}/victim\r`, // backspace fixes the flag
    `ls -l\x15rm -rf ${WORK}/victim\r`, // Ctrl-U kills what was there
    `rm -rf /tmp/decoy\x17${WORK}/victim\r`, // Ctrl-W swaps the last word
    `\x1b[200~rm -rf ${WORK}/victim\x1b[201~\r`, // bracketed paste
    `rm -r\\\rf ${WORK}/victim\r`, // a backslash continues the line (bash's PS2): judged joined
  ];
  for (const [i, keys] of cases.entries()) {
    sh.send(keys);
    await until(() => blocked().filter((e) => e.sub === 'shell-blocked').length === i + 1, `block ${i}`);
    await until(() => (sh.screen().match(/vigil: command blocked/g) ?? []).length === i + 1, `notice ${i}`);
  }
  sh.send('echo still-$((40+2))\r');
  await until(() => sh.screen().includes('still-42'), 'shell alive');
  const closed = new Promise<void>((r) => sh.ch.once('close', () => r()));
  sh.send('exit\r');
  await closed;
  c.end();
  assert.ok(await victimExists(), 'nothing was deleted');
  const ev = blocked().filter((e) => e.sub === 'shell-blocked');
  for (const e of ev) {
    assert.equal(e.protocol_kind, 'ssh_shell');
    assert.equal(e.statement, `rm -rf ${WORK}/victim`);
  }
  const [sid] = h.sessionsOf('shell-blocked');
  await until(() => h.session(sid!).events.some((e) => e.type === 'session.ended'), 'ended');
  const s = h.session(sid!);
  assert.ok(s.chainOk);
  // What the client sent and received are still exactly the recorded frames (notices included).
  assert.ok(framesOf(s.events, 'c2s', 'SSH_MSG_CHANNEL_DATA/').equals(Buffer.concat(sh.sent)));
  const toClient = Buffer.concat(s.events.filter((e): e is Extract<ChainedEvent, { type: 'frame' }> => e.type === 'frame' && e.direction === 's2c').map((e) => Buffer.from(e.data)));
  assert.ok(toClient.equals(Buffer.concat(sh.received)));
});

test('shell: keys sent in the same burst as a blocked line wait for the fresh prompt, so the dropped text never runs with them', async () => {
  // An agent writes a whole script at once. Were the keys after the Enter released with the Ctrl-C,
  // readline would read them before bash abandons the line, and run "rm -rf …/victimecho …".
  const c = await connectClient(h, { sub: 'shell-burst' });
  const sh = await shell(c);
  await until(() => sh.screen().includes('$ '), 'prompt');
  for (let i = 0; i < 5; i++) {
    sh.send(`rm -rf ${WORK}/victim\recho burst-${i}-$((40+2))\r`);
    await until(() => sh.screen().includes(`burst-${i}-42`), `burst ${i} ran on the fresh prompt`);
  }
  assert.equal((sh.screen().match(/vigil: command blocked/g) ?? []).length, 5);
  assert.doesNotMatch(sh.screen(), /victimecho/);
  sh.ch.close();
  c.end();
  assert.ok(await victimExists(), 'nothing was deleted');
});

test('shell: a shell that ignores Ctrl-C keeps the blocked line, so the gateway closes the shell; the next Enter cannot run it', async () => {
  const c = await connectClient(h, { sub: 'shell-trap' });
  await execCollect(c, `mkdir -p ${WORK}/victim2 && touch ${WORK}/victim2/f`);
  const sh = await shell(c);
  await until(() => sh.screen().includes('$ '), 'prompt');
  sh.send("trap '' INT\r");
  await until(() => (sh.screen().match(/\$ /g) ?? []).length >= 2, 'prompt after trap');
  let closed = false;
  sh.ch.once('close', () => (closed = true));
  sh.send(`rm -rf ${WORK}/victim2\r`);
  await until(() => sh.screen().includes('vigil: command blocked'), 'block notice');
  // " #" + Enter is an allowed line on its own; in the shell it would complete "rm -rf …/victim2 #".
  sh.send(' #\r');
  await until(() => closed, 'the gateway closes the shell');
  assert.match(sh.screen(), /vigil: the shell did not discard the blocked line/);
  assert.ok(await victimExists('victim2'), 'the blocked line never ran');
  const [sid] = h.sessionsOf('shell-trap');
  await until(() => h.session(sid!).events.some((e) => e.type === 'ssh.channel' && e.action === 'closed' && e.kind === 'session' && e.code === 'GW_ERR_SSH_LINE_NOT_DISCARDED'), 'closed event with the code');
  // The connection, and the gateway, go on.
  assert.equal((await execCollect(c, 'echo after')).stdout.toString(), 'after\n');
  c.end();
});

test('shell without a terminal: lines are judged as the shell reads them (bytes are text), a blocked one is never sent, nor an unterminated one at EOF', async () => {
  const c = await connectClient(h, { sub: 'shell-nopty' });
  await execCollect(c, `mkdir -p ${WORK}/victim3 && touch ${WORK}/victim3/f`);
  const ch = await new Promise<ClientChannel>((resolve, reject) => c.shell(false, (err, s) => (err ? reject(err) : resolve(s))));
  let out = '';
  ch.on('data', (d: Buffer) => (out += d));
  let closed = false;
  ch.once('close', () => (closed = true));
  // A terminal's Ctrl-U would kill this line; a shell reading a pipe gets "rm -rf …/victim3 ^U".
  ch.write(`rm -rf ${WORK}/victim3 \x15\n`);
  // A backslash-newline joins two lines in the shell: judged as one.
  ch.write(`rm -r\\\nf ${WORK}/victim3\n`);
  ch.write('echo nopty-$((6*7))\n');
  await until(() => out.includes('nopty-42'), 'the next line ran');
  assert.match(out, /vigil: command blocked: recursive force delete is not allowed/);
  // An unterminated last line runs at EOF in a shell: it is judged as a line too.
  ch.write(`rm -rf ${WORK}/victim3`);
  ch.end();
  await until(() => closed, 'the shell ends');
  assert.ok(await victimExists('victim3'), 'no blocked line ran');
  assert.equal(blocked().filter((e) => e.sub === 'shell-nopty').length, 3);
  // A line longer than the gateway keeps cannot be judged: the shell is closed, nothing runs.
  const ch2 = await new Promise<ClientChannel>((resolve, reject) => c.shell(false, (err, s) => (err ? reject(err) : resolve(s))));
  let closed2 = false;
  ch2.on('data', () => {});
  ch2.once('close', () => (closed2 = true));
  ch2.write(`: ${'A'.repeat(70_000)}; rm -rf ${WORK}/victim3\n`);
  await until(() => closed2, 'the over-long line closes the shell');
  assert.ok(await victimExists('victim3'), 'the over-long line never ran');
  const refused = blocked().filter((e) => e.sub === 'shell-nopty');
  assert.equal(refused.length, 4, 'the over-long line is recorded as blocked');
  assert.ok(refused[3]!.statement.startsWith(': AAAA') && refused[3]!.statement.length <= 1024, 'with its start');
  const [sid] = h.sessionsOf('shell-nopty');
  await until(() => h.session(sid!).events.some((e) => e.type === 'ssh.channel' && e.action === 'closed' && e.code === 'GW_ERR_SSH_LINE_TOO_LONG'), 'closed with GW_ERR_SSH_LINE_TOO_LONG');
  c.end();
});

test('the real OpenSSH client under tmux: a typed, backspace-edited line is blocked; the user sees why', async () => {
  const t = sshInTmux(h, await h.issuer.mint('tmux-user'), { user: 'tmux-user@web-1' });
  try {
    await t.waitFor(/^\$/m, 'prompt');
    t.type(`rm -rf ${WORK}/victimX`);
    t.send(['BSpace']);
    t.send(['Enter']);
    await t.waitFor(/vigil: command blocked/, 'block notice');
    t.type('echo tmux-$((6*7))');
    t.send(['Enter']);
    await t.waitFor(/tmux-42/, 'shell alive');
    t.type('exit');
    t.send(['Enter']);
    await t.waitFor(/\[ssh exited 0\]/, 'ssh exit');
  } finally {
    t.kill();
  }
  assert.ok(await victimExists());
  assert.ok(blocked().some((e) => e.sub === 'tmux-user' && e.statement === `rm -rf ${WORK}/victim`));
});

test('forwarding: refused by default (event), allowed by an explicit rule and recorded', async () => {
  const c = await connectClient(h, { sub: 'no-tunnel' });
  const err = await new Promise<Error | undefined>((resolve) => c.forwardOut('127.0.0.1', 5555, '127.0.0.1', sshd.port, (e) => resolve(e)));
  assert.ok(err, 'direct-tcpip refused');
  c.end();
  await until(() => h.events().some((e) => e.type === 'ssh.channel' && e.action === 'refused' && e.kind === 'direct-tcpip' && e.sub === undefined && e.code === 'GW_ERR_SSH_FORWARDING_REFUSED'), 'refusal event');
  // Agent forwarding asked for by a shell: refused, recorded.
  const c1 = await connectClient(h, { sub: 'agent-asker' });
  const r = await new Promise<number | null>((resolve, reject) =>
    c1.exec('echo hi', { x11: true }, (e, ch) => {
      if (e) return reject(e);
      ch.resume();
      ch.on('exit', (code: number) => resolve(code));
    }),
  ).catch(() => null);
  void r;
  c1.end();
  await until(() => h.events().some((e) => e.type === 'ssh.request' && e.request === 'x11-req' && !e.accepted), 'x11 refused');

  const sre = await connectClient(h, { sub: 'tunneler', password: await h.issuer.mint('tunneler', { groups: ['sre'] }) });
  const banner = await new Promise<string>((resolve, reject) =>
    sre.forwardOut('127.0.0.1', 5555, '127.0.0.1', sshd.port, (e, ch) => {
      if (e) return reject(e);
      ch.once('data', (d: Buffer) => {
        resolve(d.toString());
        ch.close();
      });
    }),
  );
  assert.match(banner, /^SSH-2\.0-OpenSSH/);
  sre.end();
  const [sid] = h.sessionsOf('tunneler');
  await until(() => h.session(sid!).events.some((e) => e.type === 'frame' && e.direction === 's2c'), 'tunnel frames');
  assert.ok(h.session(sid!).events.some((e) => e.type === 'ssh.channel' && e.action === 'open' && e.kind === 'direct-tcpip' && e.rule_id === 'tunnels-for-sre'));
});

test('SFTP: uploads and downloads recorded with names, sizes and directions; refused for interns', async () => {
  const c = await connectClient(h, { sub: 'sftp-user' });
  const sftp = await new Promise<import('ssh2').SFTPWrapper>((resolve, reject) => c.sftp((e, s) => (e ? reject(e) : resolve(s))));
  const data = randomBytes(300_000);
  const path = `${WORK}/upload.bin`;
  await new Promise<void>((resolve, reject) => sftp.writeFile(path, data, (e) => (e ? reject(e) : resolve())));
  const back = await new Promise<Buffer>((resolve, reject) => sftp.readFile(path, (e, b) => (e ? reject(e) : resolve(b))));
  assert.ok(back.equals(data));
  await new Promise<void>((resolve, reject) => sftp.unlink(path, (e) => (e ? reject(e) : resolve())));
  sftp.end();
  c.end();
  const [sid] = h.sessionsOf('sftp-user');
  await until(() => h.session(sid!).events.some((e) => e.type === 'session.ended'), 'ended');
  const files = h.session(sid!).events.filter((e): e is SshFile => e.type === 'ssh.file');
  assert.ok(files.some((f) => f.op === 'open' && f.path === path && f.direction === 'upload' && f.bytes === data.length), JSON.stringify(files));
  assert.ok(files.some((f) => f.op === 'open' && f.path === path && f.direction === 'download' && f.bytes === data.length), JSON.stringify(files));
  assert.ok(files.some((f) => f.op === 'remove' && f.path === path && f.status === 0));

  const intern = await connectClient(h, { sub: 'intern', password: await h.issuer.mint('intern', { groups: ['intern'] }) });
  const err = await new Promise<Error | undefined>((resolve) => intern.sftp((e) => resolve(e)));
  assert.ok(err, 'sftp refused for interns');
  intern.end();
  await until(() => h.events().some((e) => e.type === 'ssh.request' && e.request === 'subsystem' && e.subsystem === 'sftp' && !e.accepted && e.rule_id === 'no-file-transfer-for-interns'), 'sftp refusal event');
});
