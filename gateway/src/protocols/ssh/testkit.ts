/**
 * Test support for the SSH gateway (not used by production code): a REAL OpenSSH server (Debian
 * `openssh-server`) started on a loopback port with its own host key, its own sshd_config and a
 * test user (created with useradd when missing); the gateway in front of it; ssh2 clients; and the
 * real `ssh` client under tmux.
 */
import type { ApprovalService } from '../../approvals/broker.ts';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import ssh2, { type ClientChannel } from 'ssh2';
import { decode, verifyChain, type ChainedEvent } from '@vigil/schemas';
import { EventSink } from '../../recorder/sink.ts';
import { startGateway, type Gateway } from '../../index.ts';
import { MemoryProducer, createIssuer, captureLogger, type Issuer, type LogLine } from '../pg/testkit.ts';

export const TEST_USER = 'vigil-ssh-test';
export const TEST_PASSWORD = 'Vigil-target-pw-7f3a9c21e5';
const SSHD = '/usr/sbin/sshd';

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The test user exists, has a known password, a bash login shell and a plain prompt. */
export function ensureTestUser(): string {
  try {
    sh('id', [TEST_USER]);
  } catch {
    sh('useradd', ['-m', '-s', '/bin/bash', TEST_USER]);
  }
  execFileSync('chpasswd', { input: `${TEST_USER}:${TEST_PASSWORD}\n` });
  const home = sh('getent', ['passwd', TEST_USER]).split(':')[5]!;
  // A fixed prompt and no history file: screens are comparable and runs do not leak into each other.
  writeFileSync(join(home, '.bashrc'), "PS1='$ '\nunset HISTFILE\n");
  writeFileSync(join(home, '.hushlogin'), '');
  return home;
}

export interface Sshd {
  port: number;
  dir: string;
  /** The host public key line the gateway pins. */
  hostKey: string;
  /** Private key the gateway logs in with (file), and its public key. */
  clientKeyFile: string;
  clientKeyText: string;
  home: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForBanner(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited (${child.exitCode}): ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('SSH-2.0-'));
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not answer on ${port}: ${log()}`);
}

export async function startSshd(opts: { extraConfig?: string } = {}): Promise<Sshd> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: install Debian openssh-server (.ci/run does)`);
  const home = ensureTestUser();
  const dir = mkdtempSync(join(tmpdir(), 'vigil-sshd-'));
  chmodSync(dir, 0o755);
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vigil-test-host', '-f', join(dir, 'host_ed25519')]);
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vigil-gateway', '-f', join(dir, 'gateway_key')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'gateway_key.pub')));
  chmodSync(join(dir, 'authorized_keys'), 0o644);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_ed25519')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'StrictModes no', // the key file sits under /tmp (world-writable parent)
    'UsePAM no',
    'PasswordAuthentication yes',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin no',
    `AllowUsers ${TEST_USER}`,
    'Subsystem sftp internal-sftp',
    'AllowTcpForwarding yes',
    'X11Forwarding yes', // the gateway refuses X11 unless policy allows it (forwarding.test.ts)
    'AllowAgentForwarding yes',
    'PrintMotd no',
    'PrintLastLog no',
    'AcceptEnv LANG LC_* VIGIL_*',
    'MaxSessions 1000',
    'LogLevel ERROR',
    opts.extraConfig ?? '',
  ].join('\n');
  writeFileSync(join(dir, 'sshd_config'), config + '\n');
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  await waitForBanner(port, child, () => log);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    port,
    dir,
    home,
    hostKey: readFileSync(join(dir, 'host_ed25519.pub'), 'utf8').trim(),
    clientKeyFile: join(dir, 'gateway_key'),
    clientKeyText: readFileSync(join(dir, 'gateway_key'), 'utf8'),
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SshHarness {
  gw: Gateway;
  port: number;
  producer: MemoryProducer;
  sink: EventSink;
  issuer: Issuer;
  logs: LogLine[];
  dir: string;
  events(): ChainedEvent[];
  session(sessionId: string): { events: ChainedEvent[]; chainOk: boolean; problem?: string };
  sessionsOf(sub: string): string[];
  close(): Promise<void>;
}

/** The gateway (PostgreSQL listener unused) with an SSH listener in front of `sshd`. */
export async function startSshHarness(sshd: Sshd, overrides: { ssh?: Record<string, unknown>; targets?: Record<string, unknown>[]; policy_file?: string; env?: NodeJS.ProcessEnv; fail_closed?: boolean; approvals?: ApprovalService } = {}): Promise<SshHarness> {
  const producer = new MemoryProducer();
  const sink = new EventSink(producer, { topic: 'vigil.frames.v1', high_water_bytes: 64 * 1024 * 1024, low_water_bytes: 16 * 1024 * 1024, retry_backoff_ms: 10 });
  const issuer = await createIssuer();
  const { logger, lines } = captureLogger();
  const dir = mkdtempSync(join(tmpdir(), 'vigil-sshgw-'));
  const gw = await startGateway({
    config: {
      id: 'gw-test',
      postgres: { listen_port: 0 },
      ssh: { listen_port: 0, host_key_file: join(dir, 'host_key'), auth_timeout_ms: 10_000, ...overrides.ssh },
      fail_closed: overrides.fail_closed ?? true,
      ...(overrides.policy_file ? { policy_file: overrides.policy_file } : {}),
    },
    targets: overrides.targets ?? [
      { id: 'web-1', protocol: 'ssh', host: '127.0.0.1', port: sshd.port, user: TEST_USER, host_keys: [sshd.hostKey], private_key: { file: sshd.clientKeyFile } },
    ],
    verifier: issuer.verifier,
    sink,
    logger,
    env: overrides.env,
    ...(overrides.approvals ? { approvals: overrides.approvals } : {}),
  });
  const decodeAll = (): ChainedEvent[] => producer.records.map((r) => decode(r.value));
  return {
    gw,
    port: gw.ssh!.port,
    producer,
    sink,
    issuer,
    logs: lines,
    dir,
    events: decodeAll,
    session(sessionId) {
      const raw = producer.records.filter((r) => r.key === sessionId).map((r) => r.value);
      const report = verifyChain(raw);
      return { events: raw.map((v) => decode(v)), chainOk: report.ok, ...(report.problem ? { problem: report.problem } : {}) };
    },
    sessionsOf(sub) {
      return decodeAll()
        .filter((e) => e.type === 'session.started' && e.sub === sub)
        .map((e) => e.session_id);
    },
    async close() {
      await gw.close();
      await sink.drain();
      rmSync(dir, { recursive: true, force: true });
      rmSync(issuer.dir, { recursive: true, force: true });
    },
  };
}

export type SshClient = InstanceType<typeof ssh2.Client>;

/** An ssh2 client through the gateway as `<sub>@<target>` with `password` (default: a fresh token). */
export async function connectClient(h: SshHarness, opts: { sub?: string; target?: string; password?: string; username?: string; algorithms?: ssh2.Algorithms } = {}): Promise<SshClient> {
  const sub = opts.sub ?? 'alice';
  const password = opts.password ?? (await h.issuer.mint(sub));
  const c = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    c.once('ready', () => resolve());
    c.once('error', reject);
    c.connect({ host: '127.0.0.1', port: h.port, username: opts.username ?? `${sub}@${opts.target ?? 'web-1'}`, password, tryKeyboard: false, readyTimeout: 20_000, ...(opts.algorithms ? { algorithms: opts.algorithms } : {}) });
  });
  c.on('error', () => {});
  return c;
}

/** Run a command over exec; collect stdout, stderr and the exit code. */
export function execCollect(c: SshClient, command: string, input?: Buffer): Promise<{ stdout: Buffer; stderr: Buffer; code: number | null; signal?: string }> {
  return new Promise((resolve, reject) => {
    c.exec(command, (err, ch: ClientChannel) => {
      if (err) return reject(err);
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      let code: number | null = null;
      let signal: string | undefined;
      ch.on('data', (d: Buffer) => out.push(d));
      ch.stderr.on('data', (d: Buffer) => errOut.push(d));
      ch.on('exit', (c0: number | null, s?: string) => {
        code = c0;
        signal = s;
      });
      ch.on('close', () => resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(errOut), code, ...(signal ? { signal } : {}) }));
      if (input) ch.end(input);
      else ch.end();
    });
  });
}

/** Frames of one session, one direction, optionally only of some msg_type prefix. */
export function framesOf(events: ChainedEvent[], direction: 'c2s' | 's2c', prefix = 'SSH_MSG_CHANNEL_'): Buffer {
  return Buffer.concat(
    events.filter((e): e is Extract<ChainedEvent, { type: 'frame' }> => e.type === 'frame' && e.direction === direction && (e.msg_type ?? '').startsWith(prefix)).map((e) => Buffer.from(e.data)),
  );
}

/** Wait until `check()` holds (events arrive asynchronously), or throw with `what`. */
export async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The gateway's host key as an OpenSSH known_hosts line (for the real `ssh` client). */
export function knownHostsLine(h: SshHarness): string {
  const pub = ssh2.utils.parseKey(readFileSync(join(h.dir, 'host_key'), 'utf8'));
  if (pub instanceof Error || Array.isArray(pub)) throw new Error('gateway host key');
  return `[127.0.0.1]:${h.port} ${pub.type} ${pub.getPublicSSH().toString('base64')}\n`;
}

// ---- the real OpenSSH client under tmux ---------------------------------------------------------

export interface Tmux {
  socket: string;
  send(keys: string[]): void;
  /** Literal text (no key-name lookup). */
  type(text: string): void;
  capture(): string;
  /** Wait until the pane shows `re`. */
  waitFor(re: RegExp, what?: string, timeoutMs?: number): Promise<string>;
  kill(): void;
}

/** `ssh` through the gateway in a detached tmux pane (width × height), with the token via SSH_ASKPASS. */
export function sshInTmux(h: SshHarness, token: string, opts: { user?: string; width?: number; height?: number; command?: string } = {}): Tmux {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-tmux-'));
  const askpass = join(dir, 'askpass.sh');
  writeFileSync(join(dir, 'token'), token, { mode: 0o600 });
  writeFileSync(askpass, `#!/bin/sh\ncat ${join(dir, 'token')}\n`, { mode: 0o700 });
  const fp = h.gw.ssh!.fingerprint;
  writeFileSync(join(dir, 'known_hosts'), knownHostsLine(h));
  const socket = `vigil-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const args = [
    'ssh', '-tt', '-p', String(h.port),
    '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=keyboard-interactive,password', '-o', 'NumberOfPasswordPrompts=1',
    '-o', 'LogLevel=ERROR', '-F', '/dev/null',
    `${opts.user ?? 'alice@web-1'}@127.0.0.1`, ...(opts.command ? [opts.command] : []),
  ];
  const shellCmd = `SSH_ASKPASS=${askpass} SSH_ASKPASS_REQUIRE=force DISPLAY=:0 ${args.map((a) => `'${a}'`).join(' ')}; echo "[ssh exited $?]"; sleep 600`;
  execFileSync('tmux', ['-L', socket, '-f', '/dev/null', 'new-session', '-d', '-x', String(opts.width ?? 100), '-y', String(opts.height ?? 30), shellCmd]);
  void fp;
  const t: Tmux = {
    socket,
    send: (keys) => void execFileSync('tmux', ['-L', socket, 'send-keys', '-t', '0', ...keys]),
    type: (text) => void execFileSync('tmux', ['-L', socket, 'send-keys', '-t', '0', '-l', text]),
    capture: () => execFileSync('tmux', ['-L', socket, 'capture-pane', '-p', '-t', '0'], { encoding: 'utf8' }),
    async waitFor(re, what = String(re), timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const screen = t.capture();
        if (re.test(screen)) return screen;
        if (Date.now() > end) throw new Error(`tmux: timed out waiting for ${what}; screen:\n${screen}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    kill() {
      try {
        execFileSync('tmux', ['-L', socket, 'kill-server'], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}
