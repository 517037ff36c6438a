/**
 * Just-in-time approval of SSH commands through the gateway against a real sshd, with decisions on
 * a real local event log's control topic (as the API publishes them): an exec waits before it
 * starts; a shell line's Enter waits, and what is typed behind it waits too; approved → it runs,
 * denied → the reason (exit 126 for exec, Ctrl-C and a notice for a shell line).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { Topics, type EventLog } from '@vigil/eventlog';
import { nowUs, type ApprovalDecided, type ApprovalRequested, type ApprovalResolved, type ChainedEvent } from '@vigil/schemas';
import { ApprovalBroker } from '../../approvals/broker.ts';
import { encodeDecision } from '../../approvals/control.ts';
import { silentLogger } from '../../logger.ts';
import { startSshd, startSshHarness, connectClient, execCollect, until, type Sshd, type SshHarness } from './testkit.ts';

const POLICY = `version: 1
rules:
  - id: touch-needs-approval
    match: { commands: ["touch *"] }
    require_approval: { approver_groups: [sre], timeout_s: 60 }
`;

const WORK = `/tmp/vigil-ssh-appr-${process.pid}`;
let sshd: Sshd;
let h: SshHarness;
let dir: string;
let log: EventLog;
let broker: ApprovalBroker;

before(async () => {
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'vigil-ssh-appr-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  log = await LocalEventLog.open({ dir: join(dir, 'log'), fsync: 'never' });
  broker = await ApprovalBroker.start({ log, producer: log.producer(), gatewayId: 'gw-test', logger: silentLogger });
  h = await startSshHarness(sshd, { policy_file: join(dir, 'policy.yaml'), approvals: broker });
  const c = await connectClient(h, { sub: 'setup' });
  await execCollect(c, `mkdir -p ${WORK}`);
  c.end();
});
after(async () => {
  const c = await connectClient(h, { sub: 'teardown' }).catch(() => undefined);
  if (c) {
    await execCollect(c, `rm -r ${WORK}`);
    c.end();
  }
  await h?.close();
  await broker?.close();
  await log?.close();
  await sshd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function decide(req: ApprovalRequested, decision: 'approve' | 'deny', reason: string): Promise<void> {
  const d: ApprovalDecided = { type: 'approval.decided', version: 1, event_id: randomUUID(), time: nowUs(), approval_id: req.approval_id, session_id: req.session_id, sub: 'sam', groups: ['sre'], reason, via: 'test', decision };
  await log.producer().send(Topics.approvals, [encodeDecision(d)]);
}

const requested = (sub: string, n = 0) =>
  until(() => h.events().filter((e) => e.type === 'approval.requested' && e.sub === sub).length > n, `approval.requested #${n + 1} of ${sub}`).then(
    () => h.events().filter((e): e is ApprovalRequested & ChainedEvent => e.type === 'approval.requested' && e.sub === sub)[n]!,
  );
const resolvedOf = (id: string) => h.events().find((e): e is ApprovalResolved & ChainedEvent => e.type === 'approval.resolved' && e.approval_id === id);

async function exists(path: string): Promise<boolean> {
  const c = await connectClient(h, { sub: 'checker' });
  const r = await execCollect(c, `test -e ${path} && echo yes || echo no`);
  c.end();
  return r.stdout.toString().trim() === 'yes';
}

test('exec: the command waits (told on stderr), runs when approved, is refused with exit 126 when denied', async () => {
  const c = await connectClient(h, { sub: 'exec-user' });
  const ok = execCollect(c, `touch ${WORK}/approved`);
  const req = await requested('exec-user');
  assert.equal(req.protocol_kind, 'command');
  assert.equal(req.statement, `touch ${WORK}/approved`);
  assert.equal(await exists(`${WORK}/approved`), false, 'nothing ran while it waits');
  await decide(req, 'approve', 'fine');
  const r = await ok;
  assert.equal(r.code, 0);
  assert.match(r.stderr.toString(), new RegExp(`needs approval under policy rule "touch-needs-approval" \\(approval ${req.approval_id}\\)`));
  assert.equal(await exists(`${WORK}/approved`), true);

  const no = execCollect(c, `touch ${WORK}/denied`);
  const req2 = await requested('exec-user', 1);
  await decide(req2, 'deny', 'not today');
  const r2 = await no;
  assert.equal(r2.code, 126);
  assert.match(r2.stderr.toString(), /command denied under policy rule "touch-needs-approval".*by sam: not today/);
  assert.equal(await exists(`${WORK}/denied`), false);
  c.end();
  await until(() => resolvedOf(req2.approval_id)?.outcome === 'denied', 'approval.resolved denied');
  const s = h.session(req.session_id);
  assert.ok(s.chainOk, s.problem);
});

test('shell: the Enter of a line that needs approval waits, with what is typed behind it; approve and deny', async () => {
  const c = await connectClient(h, { sub: 'shell-user' });
  const ch = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: 'xterm', cols: 120, rows: 30 }, (err, s) => (err ? reject(err) : resolve(s))));
  let screen = '';
  ch.on('data', (d: Buffer) => (screen += d.toString()));
  await until(() => screen.includes('$ '), 'prompt');
  ch.write(`touch ${WORK}/from-shell\r`);
  const req = await requested('shell-user');
  assert.equal(req.statement, `touch ${WORK}/from-shell`);
  await until(() => screen.includes(`approval ${req.approval_id}`), 'the waiting notice');
  ch.write(`echo typed-behind-${req.approval_id.slice(0, 8)}\r`);
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!screen.includes(`typed-behind-${req.approval_id.slice(0, 8)}\r\n`), 'what was typed behind it has not run');
  assert.equal(await exists(`${WORK}/from-shell`), false);
  await decide(req, 'approve', 'ok');
  await until(() => screen.split(`typed-behind-${req.approval_id.slice(0, 8)}`).length >= 3, 'the echo after the approved line');
  assert.equal(await exists(`${WORK}/from-shell`), true);

  ch.write(`touch ${WORK}/shell-denied\r`);
  const req2 = await requested('shell-user', 1);
  // Typed behind the denied line: it must run on a fresh prompt, never appended to the dropped text.
  ch.write('echo behind-$((6*7))\r');
  await new Promise((r) => setTimeout(r, 100));
  await decide(req2, 'deny', 'no thanks');
  await until(() => screen.includes('command denied under policy rule "touch-needs-approval"'), 'the denial notice');
  await until(() => screen.includes('behind-42'), 'the line typed behind it ran on its own');
  assert.doesNotMatch(screen, /shell-deniedecho/);
  ch.write('echo still-alive\r');
  await until(() => screen.split('still-alive').length >= 3, 'the shell goes on');
  assert.equal(await exists(`${WORK}/shell-denied`), false);
  ch.end();
  c.end();
});
