#!/usr/bin/env node
/**
 * Build the native frame sealer (seal_frame.c → build/vigil_seal.node). Run by `npm install`
 * (postinstall) and by `npm run build:native`.
 *
 * It needs a C compiler (`cc`, or $CC) and the Node-API headers of the node install
 * (<prefix>/include/node, shipped with Node). No node-gyp: no headers are downloaded, and the
 * addon links nothing (OpenSSL's SHA-256 comes from the node process it loads into).
 *
 * Without a compiler the build is skipped with a warning and Vigil seals frames in JS (same bytes,
 * more CPU per frame); `--strict` makes that an error instead.
 *
 * `--sanitize` builds a second copy with AddressSanitizer and UndefinedBehaviorSanitizer (any
 * finding aborts) into build/sanitized/, for schemas/native/sanitized.test.ts; nothing loads it
 * unless VIGIL_NATIVE_ADDON points at it.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, 'seal_frame.c');
const sanitize = process.argv.includes('--sanitize');
const outDir = sanitize ? join(here, 'build', 'sanitized') : join(here, 'build');
const addon = join(outDir, 'vigil_seal.node');
const strict = process.argv.includes('--strict');

function giveUp(why) {
  const msg = `native sealer not built: ${why}. Vigil will seal frames in JS (same bytes, more CPU per frame).`;
  if (strict) {
    console.error(`error: ${msg}`);
    process.exit(1);
  }
  console.warn(`warning: ${msg}`);
  process.exit(0);
}

if (process.platform !== 'linux' && process.platform !== 'darwin') giveUp(`no build recipe for ${process.platform}`);
const include = [join(dirname(process.execPath), '..', 'include', 'node'), process.env.VIGIL_NODE_INCLUDE].find((d) => d && existsSync(join(d, 'node_api.h')));
if (!include) giveUp(`node_api.h not found under ${join(dirname(process.execPath), '..', 'include', 'node')} (set VIGIL_NODE_INCLUDE)`);

const cc = process.env.CC || 'cc';
mkdirSync(outDir, { recursive: true });
const tmp = `${addon}.tmp-${process.pid}`;
// -shared with undefined symbols: napi_* and OpenSSL's resolve against the node binary at load.
const args = ['-O2', '-fPIC', '-shared', '-std=c11', '-Wall', '-Wextra', '-Werror', '-fvisibility=hidden', `-I${include}`, '-o', tmp, source];
if (sanitize) args.push('-g', '-fno-omit-frame-pointer', '-fsanitize=address,undefined', '-fno-sanitize-recover=all');
if (process.platform === 'darwin') args.push('-undefined', 'dynamic_lookup');
const r = spawnSync(cc, args, { encoding: 'utf8' });
if (r.error) giveUp(`${cc} could not run (${r.error.message})`);
if (r.status !== 0) giveUp(`${cc} failed:\n${r.stderr}`);
renameSync(tmp, addon);
writeFileSync(`${addon}.source-sha256`, createHash('sha256').update(readFileSync(source)).digest('hex') + '\n');

// Load it once here, so a broken build shows at install rather than as a silent fallback. A
// sanitized build loads only with its runtimes first in the process (LD_PRELOAD).
const runtimes = sanitize ? ['libasan.so', 'libubsan.so'].map((lib) => spawnSync(cc, [`-print-file-name=${lib}`], { encoding: 'utf8' }).stdout.trim()) : [];
const checkEnv = sanitize ? { ...process.env, LD_PRELOAD: runtimes.join(' '), ASAN_OPTIONS: 'detect_leaks=0' } : process.env;
const check = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(addon)}); if (typeof m.sealFrame !== 'function' || typeof m.sealFrames !== 'function') process.exit(3)`], { encoding: 'utf8', env: checkEnv });
if (check.status !== 0) giveUp(`the built addon does not load:\n${check.stderr}`);
console.log(`native sealer built: ${addon}`);
if (sanitize) console.log(`sanitizer runtimes (LD_PRELOAD): ${runtimes.join(' ')}`);
