/**
 * A real chDB store for a test file: opened under a fresh temporary directory with Vigil's DDL
 * applied before the file's tests, released and removed after them (chDB binds one data path per
 * process, so one store per file).
 */
import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { applyDdl, openStore, releaseStore } from '../store/client.ts';

/** Registers the hooks; `opened` receives the store once it is ready. */
export function useChdbStore(prefix: string, opened: (store: ClickHouseClient) => void): void {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let store: ClickHouseClient | undefined;
  before(async () => {
    store = await openStore({ kind: 'chdb', path: dir });
    await applyDdl(store);
    opened(store);
  });
  after(async () => {
    if (store) await releaseStore(store);
    rmSync(dir, { recursive: true, force: true });
  });
}
