/**
 * A throwaway PostgreSQL with password authentication, for proving credential handling (the
 * machine's cluster trusts everyone). Runs initdb in a temp dir as the `postgres` OS user with
 * password_encryption=scram-sha-256, a pg_hba that demands scram-sha-256 on 127.0.0.1 (md5 for one
 * md5 role, plain `password` for one cleartext role), starts it on a free loopback port and
 * creates the roles with random passwords.
 *
 * Needs root (to run as `postgres` via runuser) and /usr/lib/postgresql/15/bin.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = process.env.VIGIL_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface Role {
  user: string;
  password: string;
}

export interface PasswordPostgres {
  port: number;
  /** Data directory (for reading the server log in tests). */
  dir: string;
  roles: { scram: Role; md5: Role; cleartext: Role };
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function asPostgres(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run('runuser', ['-u', 'postgres', '--', join(BIN, cmd), ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Passwords with characters that need care on the wire but none that need SQL quoting beyond ''. */
const password = (): string => `Pw-${randomBytes(12).toString('base64url')}!`;

/** `tls`: PEM cert/key paths to enable ssl=on (the files are copied into the data dir for postgres). */
export async function startPasswordPostgres(options: { tls?: { cert_file: string; key_file: string } } = {}): Promise<PasswordPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-pg-scram-'));
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  chownSync(dir, uid, gid);
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  appendFileSync(
    join(data, 'postgresql.conf'),
    [
      `port = ${port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${dir}'`,
      `password_encryption = 'scram-sha-256'`,
      `fsync = off`,
      `logging_collector = off`,
      '',
    ].join('\n'),
  );
  if (options.tls) {
    // The server refuses a key readable by others, and must own it.
    for (const [src, name] of [[options.tls.cert_file, 'server.crt'], [options.tls.key_file, 'server.key']] as const) {
      copyFileSync(src, join(data, name));
      chownSync(join(data, name), uid, gid);
      chmodSync(join(data, name), 0o600);
    }
    appendFileSync(join(data, 'postgresql.conf'), `ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n`);
  }
  const roles = {
    scram: { user: 'vigil_scram', password: password() },
    md5: { user: 'vigil_md5', password: password() },
    cleartext: { user: 'vigil_clear', password: password() },
  };
  writeFileSync(
    join(data, 'pg_hba.conf'),
    [
      'local all all trust',
      `host all ${roles.md5.user} 127.0.0.1/32 md5`,
      `host all ${roles.cleartext.user} 127.0.0.1/32 password`,
      'host all all 127.0.0.1/32 scram-sha-256',
      '',
    ].join('\n'),
  );
  chownSync(join(data, 'pg_hba.conf'), uid, gid);
  await asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '30', 'start']);
  const psql = (sql: string): Promise<string> => asPostgres('psql', ['-h', dir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-Atc', sql]);
  await psql(`create role ${roles.scram.user} login password '${roles.scram.password}'`);
  await psql(`set password_encryption = 'md5'; create role ${roles.md5.user} login password '${roles.md5.password}'`);
  await psql(`create role ${roles.cleartext.user} login password '${roles.cleartext.password}'`);
  return {
    port,
    dir,
    roles,
    async stop() {
      await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
