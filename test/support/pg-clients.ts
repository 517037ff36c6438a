/** Client-side helpers for end-to-end tests: psql runs and a raw pipelining client. */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';

export interface Conn {
  port: number;
  user: string;
  database: string;
  password: string;
}

/** Run psql with `args` (e.g. ['-c', 'select 1']); resolves with stdout, rejects on non-zero exit. */
export function psql(conn: Conn, args: string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', `host=127.0.0.1 port=${conn.port} user=${conn.user} dbname=${conn.database} sslmode=disable`, ...args], {
      env: { ...process.env, PGPASSWORD: conn.password },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.stdin.end(stdin ?? '');
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(Object.assign(new Error(`psql exited ${code}: ${err}`), { stderr: err }))));
  });
}

function msg(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');

/**
 * A minimal frontend that logs in with a password and sends three Parse/Bind/Execute groups and a
 * single Sync in ONE write (pipelining), then reads until ReadyForQuery and terminates.
 * Returns the backend message types received after login.
 */
export async function pipelined(conn: Conn, statements: { sql: string; params: (string | null)[] }[]): Promise<string[]> {
  const sock = connect(conn.port, '127.0.0.1');
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const params = Buffer.concat([cstr('user'), cstr(conn.user), cstr('database'), cstr(conn.database), Buffer.from([0])]);
  const startup = Buffer.alloc(8);
  startup.writeUInt32BE(8 + params.length, 0);
  startup.writeUInt32BE(196608, 4);
  sock.write(Buffer.concat([startup, params]));

  let buf = Buffer.alloc(0);
  const types: string[] = [];
  let loggedIn = false;
  let sentPipeline = false;
  await new Promise<void>((resolve, reject) => {
    sock.on('error', reject);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 5) {
        const len = buf.readUInt32BE(1);
        if (buf.length < 1 + len) break;
        const type = String.fromCharCode(buf[0]!);
        const body = buf.subarray(5, 1 + len);
        buf = buf.subarray(1 + len);
        if (!loggedIn) {
          if (type === 'R' && body.readUInt32BE(0) === 3) sock.write(msg('p', cstr(conn.password)));
          else if (type === 'E') return reject(new Error(`login failed: ${body.toString('utf8')}`));
          else if (type === 'Z') loggedIn = true;
          if (!loggedIn || sentPipeline) continue;
          sentPipeline = true;
          const parts: Buffer[] = [];
          for (const s of statements) {
            parts.push(msg('P', Buffer.concat([cstr(''), cstr(s.sql), Buffer.from([0, 0])])));
            const b: Buffer[] = [cstr(''), cstr(''), Buffer.from([0, 0]), Buffer.alloc(2)];
            b[3]!.writeUInt16BE(s.params.length);
            for (const p of s.params) {
              const l = Buffer.alloc(4);
              if (p === null) {
                l.writeInt32BE(-1);
                b.push(l);
              } else {
                const v = Buffer.from(p);
                l.writeInt32BE(v.length);
                b.push(l, v);
              }
            }
            b.push(Buffer.from([0, 0]));
            parts.push(msg('B', Buffer.concat(b)));
            parts.push(msg('E', Buffer.concat([cstr(''), Buffer.alloc(4)])));
          }
          parts.push(msg('S', Buffer.alloc(0)));
          sock.write(Buffer.concat(parts));
          continue;
        }
        types.push(type);
        if (type === 'Z') {
          sock.end(msg('X', Buffer.alloc(0)));
          return resolve();
        }
      }
    });
  });
  await new Promise((r) => sock.once('close', r));
  return types;
}
