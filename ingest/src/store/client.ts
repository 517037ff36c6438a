/**
 * Store access: `@clickhouse/client` everywhere. Embedded mode plugs chDB's in-process engine in
 * as the client's connection (`chdb/connection`); distributed mode talks HTTP to a ClickHouse
 * server. The rest of the code cannot tell which.
 *
 * chDB is a process singleton bound to one data path, so embedded clients are shared per path
 * (ingest and the API in one `vigil start` process use the same engine).
 */
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type StoreConfig =
  | { kind: 'chdb'; path: string }
  | { kind: 'server'; url: string; database?: string; username?: string; password?: string };

const embedded = new Map<string, { client: ClickHouseClient; refs: number }>();

/** A client for the configured store. Call `releaseStore` (not client.close) when done. */
export async function openStore(config: StoreConfig): Promise<ClickHouseClient> {
  if (config.kind === 'server') {
    return createClient({
      url: config.url,
      database: config.database,
      username: config.username,
      password: config.password,
      clickhouse_settings: { async_insert: 0 },
    });
  }
  const path = resolve(config.path);
  const shared = embedded.get(path);
  if (shared) {
    shared.refs++;
    return shared.client;
  }
  mkdirSync(path, { recursive: true });
  const { createChdbConnection } = await import('chdb/connection');
  const client = createClient({ connection: createChdbConnection({ path }) } as Parameters<typeof createClient>[0]);
  embedded.set(path, { client, refs: 1 });
  return client;
}

export async function releaseStore(client: ClickHouseClient): Promise<void> {
  for (const [path, entry] of embedded) {
    if (entry.client !== client) continue;
    if (--entry.refs === 0) {
      embedded.delete(path);
      await client.close();
    }
    return;
  }
  await client.close();
}

const ddlDir = fileURLToPath(new URL('../../../deploy/clickhouse/', import.meta.url));

/** Apply `deploy/clickhouse/*.sql` in file order (statements are idempotent). */
export async function applyDdl(client: ClickHouseClient, dir = ddlDir): Promise<number> {
  let applied = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    for (const statement of splitSql(readFileSync(join(dir, file), 'utf8'))) {
      await client.command({ query: statement });
      applied++;
    }
  }
  return applied;
}

/** Split a DDL file on `;` at line ends, dropping `--` comment lines. */
export function splitSql(text: string): string[] {
  const body = text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('--'))
    .join('\n');
  return body
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter(Boolean);
}
