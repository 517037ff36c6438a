/**
 * Public keys mapped to identities, against a real sshd: login with ssh2 and with the real OpenSSH
 * client; the identity (sub, groups, actor_kind) comes from the mapping and drives policy; unknown
 * keys, a key claimed for another sub, an expired key and a forged signature are refused and
 * recorded as auth.failed; removing an entry from the key file revokes it without a restart; a bad
 * key file at start fails the start, a file broken later refuses its keys (fail closed).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { AuthFailed, PolicyBlocked, SessionStarted } from '@vigil/schemas';
import { startSshd, startSshHarness, execCollect, knownHostsLine, until, type Sshd, type SshHarness, type SshClient } from './testkit.ts';
import { PublicKeyDirectory } from './public-keys.ts';

const run = promisify(execFile);

let sshd: Sshd;
let h: SshHarness;
let dir: string;
const keys: Record<string, { priv: string; pub: string; file: string }> = {};

function keygen(name: string, type = 'ed25519'): void {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `${name}@test`, '-f', file]);
  keys[name] = { file, priv: readFileSync(file, 'utf8'), pub: readFileSync(`${file}.pub`, 'utf8').trim() };
}

function writeKeyFile(entries: object[]): void {
  // Replace atomically, as an operator's deploy would (a new inode each time).
  const tmp = join(dir, 'keys.yaml.tmp');
  writeFileSync(tmp, entries.map((e) => `- ${JSON.stringify(e)}`).join('\n') + '\n');
  renameSync(tmp, join(dir, 'keys.yaml'));
}

const POLICY = `version: 1
rules:
  - id: agents-exec-only
    match: { actor_kind: agent, channels: [shell] }
    block: { message: agents use exec }
  - id: no-reboot-for-ops
    match: { groups: [ops], commands: ["reboot*"] }
    block: { message: ops may not reboot }
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-ssh-pubkeys-'));
  for (const k of ['alice', 'bob', 'robot', 'stranger', 'old']) keygen(k);
  keygen('carol', 'rsa');
  writeKeyFile([
    { key: keys.bob!.pub, sub: 'bob', groups: ['ops'] },
    { key: keys.robot!.pub, sub: 'robot-7', actor_kind: 'agent' },
  ]);
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  sshd = await startSshd();
  h = await startSshHarness(sshd, {
    ssh: {
      public_keys: [
        { key: keys.alice!.pub, sub: 'alice', groups: ['dev'] },
        { key: keys.carol!.pub, sub: 'carol' },
        { key: keys.old!.pub, sub: 'old', expires_at: '2020-01-01T00:00:00Z' },
      ],
      public_keys_file: join(dir, 'keys.yaml'),
    },
    policy_file: join(dir, 'policy.yaml'),
  });
});
after(async () => {
  await h?.close();
  await sshd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function connectWithKey(username: string, privateKey: string, extra: Partial<ssh2.ConnectConfig> = {}): Promise<SshClient> {
  const c = new ssh2.Client();
  return new Promise((resolve, reject) => {
    c.once('ready', () => resolve(c));
    c.once('error', reject);
    c.connect({ host: '127.0.0.1', port: h.port, username, privateKey, readyTimeout: 20_000, ...extra });
  });
}

function failures(user: string): AuthFailed[] {
  return h.events().filter((e): e is AuthFailed => e.type === 'auth.failed' && e.claimed_user === user);
}

function started(sub: string): SessionStarted | undefined {
  return h.events().find((e): e is SessionStarted => e.type === 'session.started' && e.sub === sub);
}

test('ssh2: a mapped key logs in; the identity (sub, groups, issuer) comes from the mapping', async () => {
  const c = await connectWithKey('alice@web-1', keys.alice!.priv);
  c.on('error', () => {});
  const r = await execCollect(c, 'whoami');
  assert.equal(r.stdout.toString().trim(), 'vigil-ssh-test');
  c.end();
  const s = started('alice');
  assert.ok(s);
  assert.deepEqual(s.groups, ['dev']);
  assert.equal(s.actor_kind, 'human');
  assert.match(s.issuer ?? '', /^ssh-publickey:SHA256:[A-Za-z0-9+/]{43}$/);
  // RSA keys work too (rsa-sha2-* signatures).
  const rc = await connectWithKey('carol@web-1', keys.carol!.priv);
  rc.on('error', () => {});
  assert.equal((await execCollect(rc, 'echo rsa-ok')).stdout.toString(), 'rsa-ok\n');
  rc.end();
});

test('the mapped identity drives policy: groups and actor_kind from the key file', async () => {
  const bob = await connectWithKey('bob@web-1', keys.bob!.priv);
  bob.on('error', () => {});
  const r = await execCollect(bob, 'reboot --dry-run');
  assert.equal(r.code, 126);
  assert.match(r.stderr.toString(), /ops may not reboot/);
  bob.end();
  const robot = await connectWithKey('robot-7@web-1', keys.robot!.priv);
  robot.on('error', () => {});
  assert.equal((await execCollect(robot, 'echo exec-ok')).stdout.toString(), 'exec-ok\n');
  const err = await new Promise<Error | undefined>((resolve) => robot.shell((e, ch) => (e ? resolve(e) : (ch.resume(), ch.on('close', () => resolve(undefined))))));
  assert.ok(err, 'an agent gets no shell');
  robot.end();
  await until(() => h.events().some((e) => e.type === 'policy.blocked' && e.sub === 'bob'), 'bob blocked');
  const b = h.events().find((e): e is PolicyBlocked => e.type === 'policy.blocked' && e.sub === 'bob')!;
  assert.equal(b.rule_id, 'no-reboot-for-ops');
  assert.deepEqual(b.groups, ['ops']);
  assert.equal(started('robot-7')?.actor_kind, 'agent');
  const [sid] = h.sessionsOf('robot-7');
  await until(() => h.session(sid!).events.some((e) => e.type === 'ssh.request' && e.request === 'shell' && !e.accepted && e.rule_id === 'agents-exec-only'), 'agent shell refused');
});

test('refusals: unknown key, key of another sub, expired key, forged signature; each an auth.failed event', async () => {
  await assert.rejects(connectWithKey('stranger@web-1', keys.stranger!.priv), /authentication methods failed/);
  await until(() => failures('stranger@web-1').length > 0, 'unknown key event');
  const unknown = failures('stranger@web-1')[0]!;
  assert.equal(unknown.code, 'GW_ERR_SSH_KEY_UNKNOWN');
  assert.match(unknown.reason, /^public key SHA256:\S+ is not mapped to an identity$/);

  // alice's key claiming to be bob: refused, and the reason does not say whose key it is.
  await assert.rejects(connectWithKey('bob@web-1', keys.alice!.priv), /authentication methods failed/);
  await until(() => failures('bob@web-1').length > 0, 'mismatch event');
  const mismatch = failures('bob@web-1')[0]!;
  assert.equal(mismatch.code, 'GW_ERR_SUB_MISMATCH');
  assert.doesNotMatch(mismatch.reason, /alice/);

  await assert.rejects(connectWithKey('old@web-1', keys.old!.priv), /authentication methods failed/);
  await until(() => failures('old@web-1').length > 0, 'expired event');
  assert.equal(failures('old@web-1')[0]!.code, 'GW_ERR_SSH_KEY_EXPIRED');

  // A client that knows alice's PUBLIC key but not her private key: it gets PK_OK for the query, then
  // its signature (made with another key) does not verify.
  const forged = ssh2.utils.parseKey(keys.stranger!.priv) as ssh2.ParsedKey;
  const alicePub = ssh2.utils.parseKey(keys.alice!.pub) as ssh2.ParsedKey;
  class ForgingAgent extends ssh2.BaseAgent {
    override getIdentities(cb: (err: Error | undefined, keys?: ssh2.ParsedKey[]) => void): void {
      cb(undefined, [alicePub]);
    }
    override sign(_pub: ssh2.ParsedKey, data: Buffer, options: { hash?: string } | ((e?: Error, s?: Buffer) => void), cb?: (e?: Error, s?: Buffer) => void): void {
      const done = typeof options === 'function' ? options : cb!;
      done(undefined, forged.sign(data, typeof options === 'function' ? undefined : (options?.hash as never)) as Buffer);
    }
  }
  await assert.rejects(connectWithKey('alice@web-1', '', { privateKey: undefined, agent: new ForgingAgent() as never, authHandler: ['agent'] }), /authentication methods failed/);
  await until(() => failures('alice@web-1').some((f) => f.code === 'GW_ERR_SSH_KEY_SIGNATURE'), 'signature event');
  assert.equal(started('stranger'), undefined);
  for (const f of h.events().filter((e) => e.type === 'auth.failed')) assert.doesNotMatch(JSON.stringify(f), /PRIVATE KEY/);
});

test('revocation: removing an entry from the key file refuses that key at the next login, no restart', async () => {
  const before = await connectWithKey('robot-7@web-1', keys.robot!.priv);
  before.end();
  writeKeyFile([{ key: keys.bob!.pub, sub: 'bob', groups: ['ops'] }]);
  await assert.rejects(connectWithKey('robot-7@web-1', keys.robot!.priv), /authentication methods failed/);
  await until(() => failures('robot-7@web-1').some((f) => f.code === 'GW_ERR_SSH_KEY_UNKNOWN'), 'revoked key refused');
  assert.ok(h.logs.some((l) => l.msg === 'ssh public key file reloaded' && l.obj.keys === 1));
  // A broken file refuses its keys (fail closed) but not the inline ones; fixing it restores them.
  writeFileSync(join(dir, 'keys.yaml'), '- { key: not-a-key, sub: bob }\n');
  await assert.rejects(connectWithKey('bob@web-1', keys.bob!.priv), /authentication methods failed/);
  await until(() => failures('bob@web-1').some((f) => f.code === 'GW_ERR_SSH_KEYS_UNAVAILABLE'), 'file unavailable');
  const alice = await connectWithKey('alice@web-1', keys.alice!.priv);
  alice.end();
  writeKeyFile([{ key: keys.bob!.pub, sub: 'bob', groups: ['ops'] }]);
  const bob = await connectWithKey('bob@web-1', keys.bob!.priv);
  bob.end();
});

test('the real OpenSSH client logs in with a mapped key (and is refused with an unmapped one)', async () => {
  const kh = join(dir, 'known_hosts');
  writeFileSync(kh, knownHostsLine(h));
  const ssh = (user: string, key: string, cmd: string) =>
    run('ssh', ['-F', '/dev/null', '-p', String(h.port), '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'PreferredAuthentications=publickey', '-o', `UserKnownHostsFile=${kh}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', `${user}@127.0.0.1`, cmd], { timeout: 30_000 });
  const ok = await ssh('alice@web-1', keys.alice!.file, 'echo openssh-$((6*7))');
  assert.equal(ok.stdout, 'openssh-42\n');
  await assert.rejects(ssh('stranger@web-1', keys.stranger!.file, 'true'), (e: { stderr?: string }) => /Permission denied \(publickey/.test(e.stderr ?? ''));
  await until(() => h.events().filter((e): e is AuthFailed => e.type === 'auth.failed' && e.claimed_user === 'stranger@web-1').length >= 2, 'openssh refusal recorded');
});

test('config: a malformed key entry or file fails the start with every problem listed', async () => {
  await assert.rejects(PublicKeyDirectory.load([{ key: 'ssh-ed25519 AAAAnope', sub: 'x' }, { key: keys.alice!.pub }], undefined), (e: Error) => /public_keys\/0\/key: expected an OpenSSH public key line/.test(e.message) && /public_keys\/1/.test(e.message));
  await assert.rejects(PublicKeyDirectory.load([], join(dir, 'missing.yaml')), /cannot read/);
  await assert.rejects(PublicKeyDirectory.load([{ key: keys.alice!.pub, sub: 'a' }, { key: keys.alice!.pub, sub: 'b' }], undefined), /mapped twice/);
});
