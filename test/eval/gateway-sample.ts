/**
 * The gateway sample of the detection eval: the plan's sessions (gateway-plan.ts) replayed as real
 * PostgreSQL client traffic (node-postgres, each identity with a token from the dev issuer, from its
 * own loopback address and with its own application_name) through a real `vigil start`, against
 * tables created for the run in a database of the local PostgreSQL. Events go the real way — local
 * log → ingest worker (decode → mask → detect) → chDB — and the alerts are read back with
 * `GET /api/alerts`, then scored exactly as the at-scale corpus is (score.ts).
 */
import { rmSync } from 'node:fs';
import { Socket } from 'node:net';
import pg from 'pg';
import { loadConfig } from '@vigil/cli/config';
import { openDevIssuer } from '@vigil/identity/dev-issuer';
import type { Step, Who } from '../../ingest/src/transforms/detect/testkit.ts';
import { startVigil, type VigilProcess } from '../support/vigil-process.ts';
import { generate, type Corpus } from './scenarios.ts';
import { planSample, type GatewayFamily, type Plan, type PlannedSession } from './gateway-plan.ts';
import { score, type Score, type ScoredAlert, type ScoredSession } from './score.ts';

const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };

export interface ApiAlert {
  alert_id: string;
  time: string;
  rule: string;
  sub: string;
  session_id: string;
  facts: Record<string, unknown>;
}

export interface RanSession extends PlannedSession {
  session_id: string;
  client_addr: string;
  /** µs (wall clock) just before the client connected. */
  started_us: number;
}

export interface SampleResult {
  score: Score;
  sessions: RanSession[];
  alerts: ApiAlert[];
  statements: number;
  wall_s: number;
}

/** Loopback stand-in for a generated address: 10.1.5.10 → 127.1.5.10 (Linux routes all of 127/8 to lo). */
const loopbackOf = (addr: string | undefined): string => `127.${(addr ?? '10.0.0.1').replace(/:\d+$/, '').split('.').slice(1).join('.')}`;
const timeUs = (iso: string): number => {
  const m = /\.(\d+)Z$/.exec(iso);
  return Math.floor(Date.parse(iso) / 1000) * 1e6 + (m ? Number(m[1]!.padEnd(6, '0').slice(0, 6)) : 0);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function admin<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ ...PG, database });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function createDatabase(name: string, tables: Map<string, number>): Promise<void> {
  await admin('postgres', (c) => c.query(`create database ${name}`));
  await admin(name, async (c) => {
    for (const [t, rows] of tables) {
      await c.query(`create table ${t} (id integer primary key, payload text not null)`);
      await c.query(`insert into ${t} select i, md5(i::text) from generate_series(1, ${rows}) i`);
    }
  });
}

const dropDatabase = (name: string) => admin('postgres', (c) => c.query(`drop database if exists ${name} with (force)`));

/** Run a planned session as a real client; privileged statements run inside a rolled-back transaction so the tables survive. */
async function replay(vigil: VigilProcess, token: (who: Who) => Promise<string>, s: PlannedSession): Promise<RanSession> {
  const localAddress = loopbackOf(s.who.addr);
  let sock: Socket | undefined;
  const client = new pg.Client({
    host: '127.0.0.1', port: vigil.gatewayPort, user: s.who.sub, database: 'eval-pg', password: await token(s.who),
    application_name: s.who.app ?? 'psql',
    // pg connects the stream it is given with (port, host); bind it to the identity's address first.
    stream: () => {
      sock = new Socket();
      const connect = sock.connect.bind(sock) as (o: object) => Socket;
      (sock as unknown as { connect: (port: number, host: string) => Socket }).connect = (port, host) => connect({ port, host, localAddress });
      return sock;
    },
  });
  const started_us = Date.now() * 1000;
  await client.connect();
  const client_addr = `${localAddress}:${sock!.localPort}`;
  try {
    for (const [i, st] of s.steps.entries()) {
      if (!('q' in st)) throw new Error('the gateway sample replays statements only');
      if (s.hold_last_s && i === s.steps.length - 1) await sleep(s.hold_last_s * 1000);
      const privileged = /^(drop|truncate)\b/i.test(st.q);
      if (privileged) await client.query('begin');
      // A failing statement is part of the scenario (errors, probing): the session goes on.
      await client.query(st.q).catch(() => undefined);
      if (privileged) await client.query('rollback');
    }
  } finally {
    await client.end();
  }
  return { ...s, session_id: '', client_addr, started_us };
}

async function api<T>(vigil: VigilProcess, bearer: string, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${vigil.apiPort}${path}`, { headers: { authorization: `Bearer ${bearer}` } });
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

interface ApiSession { session_id: string; client_addr: string; end_reason: string }

async function allPages<T>(vigil: VigilProcess, bearer: string, path: string): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: T[]; next: string | null } = await api(vigil, bearer, `${path}${path.includes('?') ? '&' : '?'}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.items);
    cursor = page.next;
  } while (cursor);
  return out;
}

/** Wait until every given client session is ingested and ended; fills in session ids (matched on client address:port). */
async function awaitIngested(vigil: VigilProcess, bearer: string, ran: RanSession[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ended = new Map((await allPages<ApiSession>(vigil, bearer, '/api/sessions?live=false')).map((s) => [s.client_addr, s.session_id]));
    for (const r of ran) r.session_id = ended.get(r.client_addr) ?? '';
    if (ran.every((r) => r.session_id)) return;
    if (Date.now() > deadline) throw new Error(`${ran.filter((r) => !r.session_id).length} sessions not ingested within ${timeoutMs / 1000} s`);
    await sleep(300);
  }
}

async function pool<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

export async function runGatewaySample(
  opts: { corpus?: Corpus; families?: readonly GatewayFamily[]; long_pause_s?: number; log?: (line: string) => void } = {},
): Promise<SampleResult> {
  const log = opts.log ?? (() => {});
  const corpus = opts.corpus ?? generate({ identities: 40, weeks: 3, seed: 42 });
  const plan: Plan = planSample(corpus, { families: opts.families, long_pause_s: opts.long_pause_s });
  const database = `vigil_eval_${process.pid}_${Date.now().toString(36)}`;
  let vigil: VigilProcess | undefined;
  try {
    await createDatabase(database, plan.tables);
    const t0 = performance.now();
    vigil = await startVigil({
      config: {
        targets: [{ id: 'eval-pg', protocol: 'postgres', host: PG.host, port: PG.port, database, user: PG.user }],
        ingest: { detect: plan.detect },
      },
    });
    const config = loadConfig({ file: vigil.configFile });
    const issuer = await openDevIssuer(config.dev_issuer!);
    const mint = (sub: string, groups: string[], roles: string[] = []) =>
      issuer.mint({ sub, groups, roles, ttl_s: 3600, actor_kind: 'human', audience: config.identity.audience });
    const token = (who: Who) => mint(who.sub, who.groups ?? []);
    const analyst = await mint('eval-analyst', [], ['analyst']);

    // History first, ingested before the scenarios (in the corpus it precedes them by weeks).
    const bySub = new Map<string, PlannedSession[]>();
    for (const h of plan.history) bySub.set(h.who.sub, [...(bySub.get(h.who.sub) ?? []), h]);
    const history = (await pool([...bySub.values()], 4, async (list) => {
      const out: RanSession[] = [];
      for (const s of list) out.push(await replay(vigil!, token, s));
      return out;
    })).flat();
    await awaitIngested(vigil, analyst, history, 120_000);
    log(`gateway sample: ${history.length} history sessions replayed and ingested`);

    // Scenarios: every family at once; within a family the twin, then the injected session.
    const seen = new Map<string, number>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const page = await allPages<ApiAlert>(vigil!, analyst, '/api/alerts').catch(() => []);
        for (const a of page) if (!seen.has(a.alert_id)) seen.set(a.alert_id, Date.now() * 1000);
        await sleep(200);
      }
    })();
    const scenarios = (await Promise.all(plan.pairs.map(async (p) => [await replay(vigil!, token, p.twin), await replay(vigil!, token, p.injected)]))).flat();
    await awaitIngested(vigil, analyst, scenarios, 120_000);
    // Alerts are stored before their batch is acknowledged, so an ended session's alerts are readable now.
    polling = false;
    await poller;
    const alerts = await allPages<ApiAlert>(vigil, analyst, '/api/alerts');
    for (const a of alerts) if (!seen.has(a.alert_id)) seen.set(a.alert_id, Date.now() * 1000);

    const sessions = [...history, ...scenarios];
    const scored: ScoredSession[] = sessions.map((s) => ({
      session_id: s.session_id,
      ...(s.role === 'injected' ? { attack: s.family!, attack_start: s.started_us } : {}),
    }));
    const scoredAlerts: ScoredAlert[] = alerts.map((a) => ({ rule: a.rule, session_id: a.session_id, t: timeUs(a.time), seen_us: seen.get(a.alert_id)! }));
    const statements = sessions.reduce((n, s) => n + s.steps.length, 0);
    return { score: score(scored, scoredAlerts), sessions, alerts, statements, wall_s: (performance.now() - t0) / 1000 };
  } finally {
    if (vigil && vigil.child.exitCode === null) await vigil.stop();
    if (vigil) rmSync(vigil.dataDir, { recursive: true, force: true });
    await dropDatabase(database);
  }
}
