/**
 * A throwaway PostgreSQL 15 cluster (trust auth on loopback) for tests that need settings the
 * machine's cluster does not have — e.g. more than its 100 max_connections for the 200-session
 * test. Runs as the `postgres` OS user (PostgreSQL refuses root); data in a temp dir; stop() removes it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './vigil-process.ts';

const BIN = process.env.VIGIL_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface Cluster {
  port: number;
  stop(): void;
}

export async function startCluster(settings: Record<string, string | number> = {}): Promise<Cluster> {
  const base = mkdtempSync(join(tmpdir(), 'vigil-pg-'));
  chmodSync(base, 0o777);
  const data = join(base, 'data');
  const port = await freePort();
  const asPostgres = (args: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'pipe' });
  asPostgres([`${BIN}/initdb`, '-D', data, '--auth=trust', '-U', 'postgres', '--no-sync']);
  const opts = Object.entries({ listen_addresses: '127.0.0.1', port, unix_socket_directories: base, fsync: 'off', shared_buffers: '64MB', ...settings })
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(' ');
  asPostgres([`${BIN}/pg_ctl`, '-D', data, '-o', opts, '-l', join(base, 'log'), '-w', 'start']);
  return {
    port,
    stop: () => {
      spawnSync('runuser', ['-u', 'postgres', '--', `${BIN}/pg_ctl`, '-D', data, '-m', 'immediate', 'stop'], { stdio: 'ignore' });
      rmSync(base, { recursive: true, force: true });
    },
  };
}
