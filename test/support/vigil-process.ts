/**
 * Run `vigil start` (or another subcommand) as a real child process with a generated config in a
 * temp data dir — what a user runs, for benchmarks and end-to-end tests. Captures stdout/stderr so
 * tests can search them (secrets must never appear there).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { createServer, Socket } from 'node:net';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface VigilProcess {
  child: ChildProcess;
  dataDir: string;
  configFile: string;
  gatewayPort: number;
  apiPort: number;
  output(): string;
  /** Run `vigil <args>` against the same config (e.g. token) and return stdout. */
  cli(args: string[]): Promise<string>;
  token(sub: string, opts?: { roles?: string[]; groups?: string[]; ttl?: string }): Promise<string>;
  /** Signal it and wait for its exit code; a process still running after 60 s is killed and this throws with its output. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code, or the signal name when killed by one. */
  exited: Promise<number | string | null>;
  /** `exited`, bounded: after `ms` the process is killed and this throws with its output. */
  exitedWithin(ms: number): Promise<number | string | null>;
}

export async function startVigil(
  opts: { command?: string; config?: Record<string, unknown>; dataDir?: string; env?: NodeJS.ProcessEnv; gatewayId?: string;
    /** What means started: the gateway port (default), the API port, or nothing (return at once). */
    ready?: 'gateway' | 'api' | 'none' } = {},
): Promise<VigilProcess> {
  const dataDir = opts.dataDir ?? removedAtExit(mkdtempSync(join(tmpdir(), 'vigil-')));
  const gatewayPort = await freePort();
  const apiPort = await freePort();
  const config = {
    mode: 'embedded',
    data_dir: dataDir,
    gateway: { id: opts.gatewayId ?? 'gw-test', postgres: { listen_host: '127.0.0.1', listen_port: gatewayPort } },
    targets: [{ id: 'local-pg', protocol: 'postgres', host: '127.0.0.1', port: 5432, database: 'postgres', user: 'postgres' }],
    log: { kind: 'local' },
    store: { kind: 'chdb' },
    api: { listen_host: '127.0.0.1', listen_port: apiPort },
    ...opts.config,
  };
  // A `gateway` override adds to the generated section (id, ports) instead of replacing it.
  const gwOverride = opts.config?.gateway as Record<string, unknown> | undefined;
  if (gwOverride) {
    const postgres = { listen_host: '127.0.0.1', listen_port: gatewayPort, ...(gwOverride.postgres as object | undefined) };
    config.gateway = { id: opts.gatewayId ?? 'gw-test', ...gwOverride, postgres };
  }
  const configFile = join(dataDir, 'vigil.yaml');
  writeFileSync(configFile, stringify(config));
  const bin = join(ROOT, 'bin/vigil.mjs');
  const child = spawn(process.execPath, [bin, opts.command ?? 'start', '--config', configFile], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  // A process that does not exit in time is a failure with its output, not a test that hangs
  // until the runner's file timeout: it is killed, and the error says what it printed.
  const exitedWithin = async (ms: number): Promise<number | string | null> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`vigil did not exit within ${ms} ms (killed); its output:\n${out.slice(-8000)}`));
      }, ms);
    });
    try {
      return await Promise.race([exited, late]);
    } finally {
      clearTimeout(timer);
    }
  };

  // Ready when the chosen port accepts connections (or the process died).
  const readyPort = opts.ready === 'api' ? apiPort : gatewayPort;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (opts.ready === 'none') break;
    if (child.exitCode !== null) throw new Error(`vigil exited with ${child.exitCode} during start:\n${out}`);
    if (await portOpen(readyPort)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`vigil did not listen on ${readyPort} within 60 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const cli = async (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const c = spawn(process.execPath, [bin, ...args, '--config', configFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let so = '';
      let se = '';
      c.stdout.on('data', (d) => (so += d));
      c.stderr.on('data', (d) => (se += d));
      c.on('exit', (code) => (code === 0 ? resolve(so) : reject(new Error(`vigil ${args[0]} exited ${code}: ${se}`))));
    });

  return {
    child,
    dataDir,
    configFile,
    gatewayPort,
    apiPort,
    output: () => out,
    cli,
    token: async (sub, o = {}) =>
      (await cli(['token', '--sub', sub, '--roles', (o.roles ?? []).join(','), '--groups', (o.groups ?? []).join(','), '--ttl', o.ttl ?? '1h'])).trim(),
    exited,
    exitedWithin,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const r = await exitedWithin(STOP_MS);
      return typeof r === 'number' ? r : null;
    },
  };
}

/**
 * A clean shutdown takes seconds. Above the slowest regular steps (the log thread's stop is
 * bounded at 30 s, ingest's at 15 s); a test that makes a step hang shortens the 45 s per-step
 * limit (VIGIL_SHUTDOWN_STEP_MS, cli/src/commands/run.ts).
 */
const STOP_MS = 60_000;

/**
 * Data dirs this process created, removed when it exits: a bench run leaves gigabytes of log and
 * chDB data behind otherwise. A test that restarts on the same dir passes it as `dataDir` (it is
 * still removed at exit by whoever created it). VIGIL_TEST_KEEP_DATA=1 keeps them for a post-mortem.
 */
const createdDirs = new Set<string>();

/** A fresh temporary directory (`<tmpdir>/<prefix>XXXXXX`), removed when this process exits, as startVigil's are. */
export function tempDir(prefix: string): string {
  return removedAtExit(mkdtempSync(join(tmpdir(), prefix)));
}

/** `path` (a file or directory this process made) is removed when this process exits. */
export function removedAtExit(path: string): string {
  if (process.env.VIGIL_TEST_KEEP_DATA === '1') return path;
  if (createdDirs.size === 0) {
    process.once('exit', () => {
      for (const d of createdDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  createdDirs.add(path);
  return path;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}
