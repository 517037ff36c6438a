/**
 * The target's catalog as the masking engine needs it: table OID + attribute number (from
 * RowDescription) → `schema.table.column`; relation name → columns; view → parsed definition.
 *
 * One snapshot per (target, database), shared by every session of the process, loaded by ONE
 * query over a connection of its own (the gateway's upstream login: dial + UpstreamAuth, the
 * target's password resolved per connection and never logged, errors carry codes only). The
 * snapshot is small (names and view texts) and makes every lookup synchronous on the hot path.
 *
 * Freshness — TTL plus invalidation:
 * - a snapshot older than `ttl_ms` is refreshed in the background on its next use (the old one keeps
 *   serving meanwhile);
 * - a DDL statement through any session of this gateway marks it stale at once (`invalidate`), and
 *   the next lookup waits for a fresh one;
 * - a RowDescription naming a table OID the snapshot lacks (≥ 16384, i.e. not a system catalog) or
 *   a statement naming an unknown relation makes the caller `refresh()` once and retry; still
 *   unknown, it is treated as undecidable (masked).
 * A view redefined outside the gateway is therefore seen within `ttl_ms` (docs/masking.md).
 */
import { parseSync } from 'libpg-query';
import type { CatalogLookup, RelationInfo } from '../../mask/lineage.ts';
import { resolveSecret } from '../../secrets.ts';
import type { TargetConfig } from '../../config.ts';
import type { Logger } from '../../logger.ts';
import { MessageReader, terminate } from './codec.ts';
import { UpstreamAuth } from './upstream-auth.ts';
import { dial, type DialTarget } from './upstream.ts';

type Obj = Record<string, unknown>;

/** OIDs below this are assigned at initdb (pg_catalog, information_schema): never user data. */
export const FIRST_NORMAL_OBJECT_ID = 16384;

const SNAPSHOT_SQL = `SET search_path TO pg_catalog; SELECT coalesce(json_agg(json_build_array(c.oid, n.nspname, c.relname, c.relkind,
  n.nspname IN ('pg_catalog', 'information_schema'),
  (SELECT coalesce(json_agg(json_build_array(a.attnum, a.attname) ORDER BY a.attnum), '[]') FROM pg_attribute a
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  CASE WHEN c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') THEN pg_get_viewdef(c.oid) END)), '[]')::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND n.nspname NOT LIKE 'pg_toast%'`;

interface Rel extends RelationInfo {
  readonly oid: number;
  /** attnum → column name. */
  readonly attnums: ReadonlyMap<number, string>;
}

export class CatalogSnapshot implements CatalogLookup {
  private readonly byOid = new Map<number, Rel>();
  private readonly byName = new Map<string, Rel[]>();
  constructor(
    rows: unknown[],
    readonly loadedAt: number,
  ) {
    for (const row of rows) {
      const [rawOid, schema, name, kind, system, atts, viewdef] = row as [number | string, string, string, string, boolean, [number, string][], string | null];
      const oid = Number(rawOid); // json renders oid as a string
      let parsed: Obj | undefined | null = null;
      const rel: Rel = {
        oid,
        schema,
        name,
        kind,
        system,
        columns: atts.map((a) => a[1]),
        attnums: new Map(atts),
        viewQuery() {
          if (parsed === null) parsed = viewdef ? parseView(viewdef) : undefined;
          return parsed;
        },
      };
      this.byOid.set(oid, rel);
      const list = this.byName.get(name);
      if (list) list.push(rel);
      else this.byName.set(name, [rel]);
    }
  }

  relations(schema: string | undefined, name: string): readonly RelationInfo[] {
    const all = this.byName.get(name) ?? [];
    return schema === undefined ? all : all.filter((r) => r.schema === schema);
  }

  /** `schema.table.column` of a RowDescription origin; undefined when unknown. */
  column(tableOid: number, attnum: number): string | undefined {
    const rel = this.byOid.get(tableOid);
    const col = rel?.attnums.get(attnum);
    return rel && col !== undefined ? `${rel.schema}.${rel.name}.${col}` : undefined;
  }

  relation(tableOid: number): RelationInfo | undefined {
    return this.byOid.get(tableOid);
  }

  get size(): number {
    return this.byOid.size;
  }
}

function parseView(text: string): Obj | undefined {
  try {
    const stmt = (parseSync(text) as { stmts?: { stmt: Obj }[] }).stmts?.[0]?.stmt;
    return (stmt?.SelectStmt as Obj | undefined) ?? undefined;
  } catch {
    return undefined; // lineage treats the view as opaque
  }
}

export interface CatalogOptions {
  target: TargetConfig;
  dialTarget: DialTarget;
  database: string;
  env: NodeJS.ProcessEnv;
  connectTimeoutMs: number;
  ttlMs: number;
  logger: Logger;
}

/** The catalog of one (target, database): a snapshot, refreshed as described in the header. */
export class TargetCatalog {
  private snap: CatalogSnapshot | undefined;
  private loading: Promise<CatalogSnapshot> | undefined;
  private stale = false;

  constructor(private readonly o: CatalogOptions) {}

  /** The snapshot to use now; undefined when none is loaded or it was invalidated (call refresh()). */
  current(): CatalogSnapshot | undefined {
    const s = this.snap;
    if (s === undefined || this.stale) return undefined;
    if (Date.now() - s.loadedAt > this.o.ttlMs) void this.refresh().catch(() => {}); // stale-while-revalidate
    return s;
  }

  /** The last loaded snapshot, even if stale (for decisions that must not wait). */
  last(): CatalogSnapshot | undefined {
    return this.snap;
  }

  /** A DDL statement ran: the next lookup waits for a fresh snapshot. */
  invalidate(): void {
    this.stale = true;
  }

  /** Load a fresh snapshot (concurrent callers share one load). */
  refresh(): Promise<CatalogSnapshot> {
    this.loading ??= this.load().then(
      (s) => {
        this.snap = s;
        this.stale = false;
        this.loading = undefined;
        return s;
      },
      (err: unknown) => {
        this.loading = undefined;
        throw err;
      },
    );
    return this.loading;
  }

  private async load(): Promise<CatalogSnapshot> {
    const started = Date.now();
    const text = await queryOne(this.o, SNAPSHOT_SQL);
    const snap = new CatalogSnapshot(JSON.parse(text) as unknown[], Date.now());
    this.o.logger.debug({ target_id: this.o.target.id, relations: snap.size, ms: Date.now() - started }, 'masking catalog loaded');
    return snap;
  }
}

/** Connect with the gateway's upstream login, run `sql` (simple query), return the last DataRow's first value. */
async function queryOne(o: CatalogOptions, sql: string): Promise<string> {
  const t = o.target;
  const password = t.password ? await resolveSecret(t.password, o.env) : undefined;
  const { socket } = await dial(o.dialTarget, o.connectTimeoutMs);
  return new Promise<string>((resolve, reject) => {
    const auth = new UpstreamAuth({
      user: t.user,
      database: o.database,
      password,
      params: new Map([
        ['application_name', 'vigil-masking-catalog'],
        ['client_encoding', 'UTF8'],
      ]),
      allowed: new Set(t.auth_methods),
    });
    const reader = new MessageReader({ maxFrameBytes: 256 * 1024 * 1024 });
    let authed = false;
    let value: string | undefined;
    let failure: string | undefined;
    const timer = setTimeout(() => done(new Error(`catalog query timed out after ${o.connectTimeoutMs * 3} ms`)), o.connectTimeoutMs * 3);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.on('error', () => {});
      if (!socket.destroyed) socket.end(terminate());
      setTimeout(() => socket.destroy(), 1000).unref();
      if (err) reject(err);
      else if (value === undefined) reject(new Error(failure ?? 'catalog query returned no row'));
      else resolve(value);
    };
    socket.on('error', (e: NodeJS.ErrnoException) => done(new Error(`catalog connection error ${e.code ?? ''}`)));
    socket.on('close', () => done(new Error('catalog connection closed')));
    socket.on('data', (chunk: Buffer) => {
      const err = reader.push(chunk, (type, m) => {
        if (!authed) {
          const step = auth.onMessage(type, m);
          if (step.kind === 'send') socket.write(step.data);
          else if (step.kind === 'fail') done(new Error(`catalog login failed: ${step.code}`));
          else if (step.kind === 'ok') authed = true;
          return;
        }
        const letter = String.fromCharCode(type);
        if (letter === 'Z' && value === undefined && failure === undefined && !sentQuery) {
          sentQuery = true;
          const body = Buffer.from(`${sql}\0`, 'utf8');
          const q = Buffer.alloc(5 + body.length);
          q[0] = 0x51;
          q.writeUInt32BE(4 + body.length, 1);
          body.copy(q, 5);
          socket.write(q);
        } else if (letter === 'D') {
          const len = m.readInt32BE(7);
          value = len < 0 ? undefined : m.toString('utf8', 11, 11 + len);
        } else if (letter === 'E') {
          failure = `catalog query failed (SQLSTATE ${/C([0-9A-Z]{5})\0/.exec(m.toString('latin1'))?.[1] ?? '?'})`;
        } else if (letter === 'Z' && sentQuery) done();
      });
      if (err) done(new Error(`catalog connection: ${err.message}`));
    });
    let sentQuery = false;
    socket.write(auth.startup());
  });
}

/** Catalogs of every (target, database) this process talks to. */
export class CatalogRegistry {
  private readonly catalogs = new Map<string, TargetCatalog>();
  constructor(private readonly defaults: Pick<CatalogOptions, 'env' | 'connectTimeoutMs' | 'ttlMs' | 'logger'>) {}

  get(target: TargetConfig, dialTarget: DialTarget, database: string): TargetCatalog {
    const key = `${target.id}\0${database}`;
    let c = this.catalogs.get(key);
    if (c === undefined) {
      c = new TargetCatalog({ ...this.defaults, target, dialTarget, database });
      this.catalogs.set(key, c);
    }
    return c;
  }

  /** A DDL statement on this target: every database's snapshot is suspect. */
  invalidate(targetId: string): void {
    for (const [key, c] of this.catalogs) if (key.startsWith(`${targetId}\0`)) c.invalidate();
  }
}
