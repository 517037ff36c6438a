/**
 * `npm run bench:ssh-export` — peak RSS of exporting a 100 MB terminal recording as asciicast,
 * side by side in one run, each path in its own fresh process over the same chDB store:
 *   idle      open the store and start the API, export nothing (the baseline footprint)
 *   stream    GET /api/sessions/:id/asciicast?version=2 over HTTP, the body read and discarded
 *   buffered  the same rows fetched whole (`.json()`) and the cast built as one string: what a
 *             non-streaming export would cost
 * Reported: peak RSS (maxRSS) of each process, bytes exported, the stream/buffered ratio.
 *
 * Env: BENCH_EXPORT_MB (default 100), BENCH_ROW_KB (output per row, default 4).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { openDevIssuer } from '@vigil/identity/dev-issuer';
import { createVerifier } from '@vigil/identity/verifier';
import { chTime } from '@vigil/ingest/sinks/clickhouse/rows';

const MB = Number(process.env.BENCH_EXPORT_MB ?? 100);
const ROW_KB = Number(process.env.BENCH_ROW_KB ?? 4);
const SESSION = 'bench-ssh-export';
const ISSUER = 'http://127.0.0.1:8480';
const self = fileURLToPath(import.meta.url);

async function prepare(dir: string): Promise<void> {
  const store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
  await applyDdl(store);
  const rowBytes = ROW_KB * 1024;
  const rows = Math.ceil((MB * 1024 * 1024) / rowBytes);
  // Printable output (terminal text): random base64 text split in lines, so it is valid UTF-8.
  const t0 = Date.now() * 1000;
  const batch = 2000;
  for (let i = 0; i < rows; i += batch) {
    const values = [];
    for (let j = i; j < Math.min(rows, i + batch); j++) {
      const text = randomBytes((rowBytes * 3) / 4).toString('base64').replace(/(.{100})/g, '$1\r\n').slice(0, rowBytes);
      values.push({ session_id: SESSION, seq: j + 1, code: 'o', channel: 0, time: chTime(t0 + j * 1000), data: Buffer.from(text).toString('base64') });
    }
    await store.insert({ table: 'terminal', values, format: 'JSONEachRow' });
  }
  await store.insert({ table: 'terminal', values: [{ session_id: SESSION, seq: 0, code: 'r', channel: 0, time: chTime(t0), data: '120x40' }], format: 'JSONEachRow' });
  await releaseStore(store);
}

/** Child: one path, prints {rss_mb, bytes}. */
async function child(dir: string, path: string): Promise<void> {
  const { buildApi } = await import('@vigil/replay-ui/app');
  const store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
  const issuer = await openDevIssuer({ dir: join(dir, 'issuer'), issuer: ISSUER });
  const token = await issuer.mint({ sub: 'bench', roles: ['analyst'], ttl_s: 600, audience: 'vigil' });
  const app = await buildApi({ config: {}, verifier: createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file }), store });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  let bytes = 0;
  if (path === 'stream') {
    bytes = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: `/api/sessions/${SESSION}/asciicast?version=2`, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let n = 0;
        res.on('data', (d: Buffer) => (n += d.length));
        res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`HTTP ${res.statusCode}`))));
      }).on('error', reject);
    });
  } else if (path === 'buffered') {
    const r = await store.query({
      query: `SELECT toString(seq) AS seq_text, code, toString(toUnixTimestamp64Micro(time)) AS t, data FROM terminal FINAL WHERE session_id = {id:String} ORDER BY terminal.seq`,
      query_params: { id: SESSION },
      format: 'JSONEachRow',
    });
    const all = await r.json<{ seq_text: string; code: string; t: string; data: string }>();
    const start = Number(all[0]!.t);
    const cast = ['{"version":2,"width":120,"height":40}\n', ...all.map((x) => JSON.stringify([(Number(x.t) - start) / 1e6, x.code, Buffer.from(x.data, 'base64').toString('utf8')]) + '\n')].join('');
    bytes = cast.length;
  }
  await app.close();
  await releaseStore(store);
  process.stdout.write(JSON.stringify({ rss_mb: Math.round(process.resourceUsage().maxRSS / 1024), bytes }) + '\n');
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]!, process.argv[4]!);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-export-'));
  try {
    const t = Date.now();
    await prepare(dir);
    console.log(`prepared ${MB} MB of terminal output (${ROW_KB} KiB rows) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const results: Record<string, { rss_mb: number; bytes: number }> = {};
    for (const path of ['idle', 'stream', 'buffered']) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', dir, path], { encoding: 'utf8', maxBuffer: 1 << 20 });
      if (r.status !== 0) throw new Error(`${path} failed: ${r.stderr}`);
      results[path] = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      console.log(`${path.padEnd(9)} peak RSS ${String(results[path]!.rss_mb).padStart(5)} MB   exported ${(results[path]!.bytes / 1048576).toFixed(1)} MB`);
    }
    const s = results.stream!;
    const b = results.buffered!;
    const i = results.idle!;
    console.log(`stream above idle: ${s.rss_mb - i.rss_mb} MB; buffered above idle: ${b.rss_mb - i.rss_mb} MB; stream/buffered peak RSS ${(s.rss_mb / b.rss_mb).toFixed(2)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
