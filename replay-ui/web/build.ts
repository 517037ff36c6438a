/**
 * Build the web UI into dist/ when its sources changed since the last build, and only then.
 *
 *   npm run build:ui            (also the root package's `prepare`, so `npm install` builds it)
 *   ensureBuilt() from vigil    (start/api: a checkout updated after `npm install` is rebuilt once)
 *
 * Staleness is a hash of the sources and of the pinned build tool versions, written into
 * dist/.build-hash, so a fresh clone, a `git pull` or an upgrade rebuilds and nothing else does
 * (mtimes are unreliable across checkouts). The build goes to a temp folder and is renamed into
 * place, and a lock folder serialises concurrent starts, so a server never serves a half-written dist.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_DIR = fileURLToPath(new URL('.', import.meta.url));
export const DIST_DIR = join(WEB_DIR, 'dist');
const LOCK_DIR = join(WEB_DIR, 'dist.lock');
const HASH_FILE = '.build-hash';
const ROOT = join(WEB_DIR, '..', '..');

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else out.push(p);
  }
  return out;
}

function version(pkg: string): string {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  } catch {
    return 'missing';
  }
}

/** Hash of everything that goes into the bundle. */
export function sourceHash(): string {
  const h = createHash('sha256');
  const inputs = [join(WEB_DIR, 'index.html'), join(WEB_DIR, 'vite.config.ts'), ...files(join(WEB_DIR, 'src'))];
  // Server schemas are imported as types only; they do not change the bundle.
  for (const f of inputs) h.update(relative(WEB_DIR, f)).update('\0').update(readFileSync(f)).update('\0');
  for (const pkg of ['vite', 'react', 'react-dom']) h.update(`${pkg}@${version(pkg)}\0`);
  return h.digest('hex');
}

export function isFresh(): boolean {
  try {
    return existsSync(join(DIST_DIR, 'index.html')) && readFileSync(join(DIST_DIR, HASH_FILE), 'utf8').trim() === sourceHash();
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock older than a build can take was left by a killed process.
      if (Date.now() - statSync(LOCK_DIR, { throwIfNoEntry: false } as never)?.mtimeMs > 300_000) rmSync(LOCK_DIR, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`web UI build lock ${LOCK_DIR} held for too long`);
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

/** Build unless fresh. Returns the dist folder. `log` receives one line when a build runs. */
export async function ensureBuilt(options: { force?: boolean; log?: (line: string) => void } = {}): Promise<string> {
  if (!options.force && isFresh()) return DIST_DIR;
  return withLock(async () => {
    if (!options.force && isFresh()) return DIST_DIR; // built by whoever held the lock
    const hash = sourceHash();
    options.log?.('building the web UI (replay-ui/web → dist)');
    const { build } = await import('vite');
    const tmp = join(WEB_DIR, `dist-${process.pid}-${Date.now()}`);
    await build({ configFile: join(WEB_DIR, 'vite.config.ts'), logLevel: 'warn', build: { outDir: tmp, emptyOutDir: true } });
    writeFileSync(join(tmp, HASH_FILE), `${hash}\n`);
    const old = `${DIST_DIR}-old-${process.pid}`;
    if (existsSync(DIST_DIR)) renameSync(DIST_DIR, old);
    renameSync(tmp, DIST_DIR);
    rmSync(old, { recursive: true, force: true });
    return DIST_DIR;
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const force = process.argv.includes('--force');
  const t0 = Date.now();
  ensureBuilt({ force, log: (l) => console.log(l) }).then(
    (dir) => {
      const assets = files(join(dir, 'assets'));
      const total = assets.reduce((a, f) => a + statSync(f).size, 0);
      console.log(`web UI ready in ${relative(process.cwd(), dir) || dir} (${assets.length} assets, ${(total / 1024).toFixed(1)} KiB, ${Date.now() - t0} ms)`);
    },
    (err) => {
      console.error(`web UI build failed: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
