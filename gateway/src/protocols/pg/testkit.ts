/**
 * Test support for the pg gateway's integration tests (not used by production code): an in-memory
 * Producer behind a real EventSink, a real identity verifier over a temp JWKS file with a token
 * minter (and forgers for the bad-token tests), a recording TCP tee, and event helpers.
 */
import type { ApprovalService } from '../../approvals/broker.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, exportSPKI, type CryptoKey } from 'jose';
import { createHmac, randomBytes } from 'node:crypto';
import pg from 'pg';
import { createVerifier } from '@vigil/identity/verifier';
import { decode, verifyChain, type ChainedEvent } from '@vigil/schemas';
import type { LogRecord, Producer } from '@vigil/eventlog/types';
import { EventSink } from '../../recorder/sink.ts';
import { startGateway, type Gateway } from '../../index.ts';
import type { Logger } from '../../logger.ts';
import { MessageReader, parseErrorFields } from './codec.ts';

export const ISSUER = 'https://issuer.test.vigil';
export const AUDIENCE = 'vigil';

export class MemoryProducer implements Producer {
  readonly records: LogRecord[] = [];
  /** When set, send() rejects with this (non-retriable) error. */
  failWith: Error | undefined;
  /** When set, send() waits for this before resolving (to build up pending bytes). */
  gate: Promise<void> | undefined;
  async send(_topic: string, records: LogRecord[]): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith;
    // Producer contract: values are the caller's again once send() settles (EventSink reuses
    // its slabs), so a producer that keeps them keeps copies.
    this.records.push(...records.map((r) => ({ ...r, value: Buffer.from(r.value) })));
  }
  async close(): Promise<void> {}
}

export interface Issuer {
  mint(sub: string, opts?: { exp?: number | string; aud?: string; groups?: string[]; actor_kind?: 'agent' | 'human' }): Promise<string>;
  /** Signed with a key the verifier does not know. */
  mintForeign(sub: string): Promise<string>;
  /** `alg: none`, unsigned. */
  mintNone(sub: string): string;
  /** HS256 with the issuer's public key (PEM) as the HMAC secret: the classic key-confusion forgery. */
  mintHsWithPublicKey(sub: string): string;
  verifier: ReturnType<typeof createVerifier>;
  dir: string;
}

const b64u = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

export async function createIssuer(): Promise<Issuer> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-pg-issuer-'));
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const foreign = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
  const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks_file: join(dir, 'jwks.json') });
  const pem = await exportSPKI(publicKey);
  const sign = (key: CryptoKey, sub: string, opts: Parameters<Issuer['mint']>[1] = {}): Promise<string> =>
    new SignJWT({ groups: opts.groups ?? ['dba'], actor_kind: opts.actor_kind ?? 'agent' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(opts.aud ?? AUDIENCE)
      .setSubject(sub)
      .setIssuedAt(Math.floor(Date.now() / 1000) - 120)
      .setExpirationTime(opts.exp ?? '10m')
      .sign(key);
  const claims = (sub: string): Record<string, unknown> => ({ iss: ISSUER, aud: AUDIENCE, sub, exp: Math.floor(Date.now() / 1000) + 600 });
  return {
    dir,
    verifier,
    mint: (sub, opts) => sign(privateKey, sub, opts),
    mintForeign: (sub) => sign(foreign.privateKey, sub),
    mintNone: (sub) => `${b64u({ alg: 'none', typ: 'JWT' })}.${b64u(claims(sub))}.`,
    mintHsWithPublicKey: (sub) => {
      const input = `${b64u({ alg: 'HS256', typ: 'JWT', kid: 'k1' })}.${b64u(claims(sub))}`;
      return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
    },
  };
}

export interface LogLine {
  level: string;
  obj: Record<string, unknown>;
  msg: string;
}

export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

export interface Harness {
  gw: Gateway;
  port: number;
  producer: MemoryProducer;
  sink: EventSink;
  issuer: Issuer;
  logs: LogLine[];
  /** Decoded events of every session, in log order. */
  events(): ChainedEvent[];
  /** Events of one session in seq order, and the chain check over its raw records. */
  session(sessionId: string): { events: ChainedEvent[]; chainOk: boolean; problem?: string };
  /** Session ids that reached session.started for `sub`. */
  sessionsOf(sub: string): string[];
  close(): Promise<void>;
}

export async function startHarness(overrides: {
  postgres?: Record<string, unknown>;
  targets?: Record<string, unknown>[];
  fail_closed?: boolean;
  max_log_stall_ms?: number;
  sink?: { high_water_bytes?: number; low_water_bytes?: number };
  env?: NodeJS.ProcessEnv;
  issuer?: Issuer;
  /** gateway.policy_file */
  policy_file?: string;
  /** Just-in-time approval service (approvals/broker.ts). */
  approvals?: ApprovalService;
  /** gateway.masking */
  masking?: Record<string, unknown>;
} = {}): Promise<Harness> {
  const producer = new MemoryProducer();
  const sink = new EventSink(producer, {
    topic: 'vigil.frames.v1',
    high_water_bytes: overrides.sink?.high_water_bytes ?? 64 * 1024 * 1024,
    low_water_bytes: overrides.sink?.low_water_bytes ?? 16 * 1024 * 1024,
    retry_backoff_ms: 10,
  });
  const issuer = overrides.issuer ?? (await createIssuer());
  const { logger, lines } = captureLogger();
  const gw = await startGateway({
    config: { id: 'gw-test', postgres: { listen_port: 0, auth_timeout_ms: 5000, ...overrides.postgres }, fail_closed: overrides.fail_closed ?? true, ...(overrides.max_log_stall_ms !== undefined ? { max_log_stall_ms: overrides.max_log_stall_ms } : {}), ...(overrides.policy_file !== undefined ? { policy_file: overrides.policy_file } : {}), ...(overrides.masking !== undefined ? { masking: overrides.masking } : {}) },
    targets: overrides.targets ?? [{ id: 'main', protocol: 'postgres', host: '127.0.0.1', port: 5432, database: 'postgres', user: 'postgres' }],
    verifier: issuer.verifier,
    sink,
    logger,
    env: overrides.env,
    ...(overrides.approvals ? { approvals: overrides.approvals } : {}),
  });
  const decodeAll = (): ChainedEvent[] => producer.records.map((r) => decode(r.value));
  return {
    gw,
    port: gw.postgres.port,
    producer,
    sink,
    issuer,
    logs: lines,
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
      if (!overrides.issuer) rmSync(issuer.dir, { recursive: true, force: true });
    },
  };
}

/** A pg client through the gateway with a fresh token. */
export async function connect(h: Harness, sub = 'alice', extra: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: h.port,
    user: sub,
    database: 'main',
    password: await h.issuer.mint(sub),
    application_name: 'vigil-test',
    ...extra,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

export interface Tee {
  port: number;
  /** Bytes per accepted connection, in arrival order. */
  conns: { c2s: Buffer[]; s2c: Buffer[]; closed: Promise<void> }[];
  close(): void;
}

/** A recording loopback TCP proxy: what the client really sent and received. */
export async function startTee(targetPort: number): Promise<Tee> {
  const conns: Tee['conns'] = [];
  const server = net.createServer((client) => {
    let done!: () => void;
    const rec = { c2s: [] as Buffer[], s2c: [] as Buffer[], closed: new Promise<void>((r) => (done = r)) };
    conns.push(rec);
    const up = net.connect(targetPort, '127.0.0.1');
    client.on('data', (d) => {
      rec.c2s.push(d);
      up.write(d);
    });
    up.on('data', (d) => {
      rec.s2c.push(d);
      client.write(d);
    });
    let closes = 0;
    const onClose = (): void => {
      if (++closes === 2) done();
    };
    client.on('close', () => (up.end(), onClose()));
    up.on('close', () => (client.end(), onClose()));
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, conns, close: () => server.close() };
}

/** Raw socket helper for bad-input tests: send bytes, collect everything until the server closes. */
export function rawExchange(port: number, chunks: Buffer[], opts: { timeoutMs?: number; gapMs?: number } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`server did not close within ${opts.timeoutMs ?? 5000} ms; got ${Buffer.concat(got).length} bytes`));
    }, opts.timeoutMs ?? 5000);
    sock.on('data', (d) => got.push(d));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) break;
        sock.write(c);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait until `fn` is truthy (polling), or throw after `ms`. */
export async function until<T>(fn: () => T | undefined | false, ms = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// ---- a raw protocol client (pipelining, garbage after auth, raw cancel) ----------------------

const typedMsg = (type: string, body: Buffer): Buffer => {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeUInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
};
const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
const i16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

export const wire = {
  query: (sql: string): Buffer => typedMsg('Q', cstr(sql)),
  parse: (name: string, sql: string): Buffer => typedMsg('P', Buffer.concat([cstr(name), cstr(sql), i16(0)])),
  bind: (stmt: string, params: (string | null)[]): Buffer =>
    typedMsg(
      'B',
      Buffer.concat([
        cstr(''),
        cstr(stmt),
        i16(0),
        i16(params.length),
        ...params.map((p) => (p === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(p)), Buffer.from(p)]))),
        i16(0),
      ]),
    ),
  execute: (): Buffer => typedMsg('E', Buffer.concat([cstr(''), i32(0)])),
  sync: (): Buffer => typedMsg('S', Buffer.alloc(0)),
  terminate: (): Buffer => typedMsg('X', Buffer.alloc(0)),
  password: (s: string): Buffer => typedMsg('p', cstr(s)),
  startup: (params: Record<string, string>, version = 196608): Buffer => {
    const body = Buffer.from(Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('') + '\0');
    const head = Buffer.alloc(8);
    head.writeUInt32BE(8 + body.length, 0);
    head.writeUInt32BE(version, 4);
    return Buffer.concat([head, body]);
  },
};

export class RawPg {
  readonly messages: Buffer[] = [];
  private waiter: (() => void) | undefined;
  closed = false;
  private readonly reader = new MessageReader({ maxFrameBytes: 1 << 30 });
  key: { pid: number; secret: Buffer } | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.reader.push(d, (_t, m) => this.messages.push(Buffer.from(m)));
      this.waiter?.();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  static async open(port: number): Promise<RawPg> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((r, j) => (sock.once('connect', r), sock.once('error', j)));
    return new RawPg(sock);
  }

  /** Startup + token login; resolves after the first ReadyForQuery. */
  static async login(port: number, user: string, token: string, database = 'main', params: Record<string, string> = {}): Promise<RawPg> {
    const c = await RawPg.open(port);
    c.send(wire.startup({ user, database, ...params }));
    const auth = await c.next();
    if (auth[0] !== 0x52 || auth.readUInt32BE(5) !== 3) throw new Error(`expected AuthenticationCleartextPassword, got ${String.fromCharCode(auth[0]!)}`);
    c.send(wire.password(token));
    const msgs = await c.until('Z');
    const k = msgs.find((m) => m[0] === 0x4b);
    if (k) c.key = { pid: k.readUInt32BE(5), secret: Buffer.from(k.subarray(9)) };
    return c;
  }

  send(data: Buffer): void {
    this.socket.write(data);
  }

  async next(timeoutMs = 5000): Promise<Buffer> {
    const end = Date.now() + timeoutMs;
    while (this.messages.length === 0) {
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > end) throw new Error('timeout waiting for a message');
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 50);
      });
    }
    return this.messages.shift()!;
  }

  /** Messages up to and including the first of type `letter`. */
  async until(letter: string, timeoutMs = 10000): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (;;) {
      const m = await this.next(timeoutMs);
      out.push(m);
      if (String.fromCharCode(m[0]!) === letter) return out;
    }
  }

  /** Wait for the server to close; resolves with the remaining messages. */
  async closedWith(timeoutMs = 5000): Promise<Buffer[]> {
    await until(() => this.closed, timeoutMs, 'server close');
    return this.messages.splice(0);
  }

  close(): void {
    this.socket.destroy();
  }
}

export function errorFields(message: Buffer): Record<string, string> {
  return parseErrorFields(message);
}

/**
 * A gateway with a policy file, plus a direct (unproxied) client to the same PostgreSQL for
 * setting up and checking tables — the fixture of the enforcement tests.
 */
export interface PolicyHarness {
  h: Harness;
  /** Where the policy file lives (tests may rewrite it to exercise hot reload). */
  policyFile: string;
  direct: pg.Client;
  /** A fresh table `<prefix>_<random>` (id int) holding `rows`. */
  table(prefix: string, rows?: number[]): Promise<string>;
  exists(table: string): Promise<boolean>;
  close(): Promise<void>;
}

export async function startPolicyHarness(policyYaml: string, extra: { approvals?: ApprovalService; masking?: Record<string, unknown>; env?: NodeJS.ProcessEnv } = {}): Promise<PolicyHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-policy-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, policyYaml);
  const h = await startHarness({ policy_file: policyFile, ...extra });
  const direct = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await direct.connect();
  return {
    h,
    policyFile,
    direct,
    async table(prefix, rows = [0]) {
      const name = `${prefix}_${randomBytes(4).toString('hex')}`;
      await direct.query(`CREATE TABLE ${name} (id int); INSERT INTO ${name} VALUES ${rows.map((r) => `(${r})`).join(', ')}`);
      return name;
    },
    exists: async (t) => (await direct.query('SELECT to_regclass($1) AS r', [t])).rows[0].r !== null,
    async close() {
      await direct.end();
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
