/**
 * The native sealer's tests again, against a build with AddressSanitizer and
 * UndefinedBehaviorSanitizer (schemas/native/build.mjs --sanitize): the C reads batches and writes
 * records into buffers it is handed, so an out-of-bounds access or undefined behaviour must fail
 * the suite, not wait for a corrupt batch in production. Any sanitizer finding aborts the child
 * (-fno-sanitize-recover=all). Needs the C compiler the install needs, and its sanitizer runtimes
 * (Debian's gcc brings libasan and libubsan).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const TESTS = ['schemas/src/native.test.ts', 'gateway/src/recorder/thread/batch-seal.test.ts', 'gateway/src/recorder/thread/thread.test.ts', 'gateway/src/recorder/sink.test.ts'];

test('the native sealer passes its tests under ASan and UBSan', { timeout: 300_000 }, () => {
  const build = spawnSync(process.execPath, ['schemas/native/build.mjs', '--sanitize', '--strict'], { cwd: root, encoding: 'utf8' });
  assert.equal(build.status, 0, `sanitized build failed:\n${build.stderr}${build.stdout}`);
  const addon = /native sealer built: (\S+)/.exec(build.stdout)?.[1];
  const runtimes = /sanitizer runtimes \(LD_PRELOAD\): (.+)/.exec(build.stdout)?.[1];
  assert.ok(addon && runtimes, build.stdout);
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', ...TESTS], {
    cwd: root,
    encoding: 'utf8',
    // NODE_TEST_CONTEXT off: the child is a test run of its own, not a file of this one.
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, VIGIL_NATIVE_ADDON: addon, LD_PRELOAD: runtimes, ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = `${run.stdout}\n${run.stderr}`;
  assert.doesNotMatch(out, /ERROR: AddressSanitizer|runtime error:/, out.slice(-4000));
  assert.equal(run.status, 0, out.slice(-4000));
  // The sanitized addon was the one in use (the tests assert the native sealer is loaded) and the
  // suites ran.
  const passed = Number(/^# pass (\d+)/m.exec(run.stdout)?.[1] ?? 0);
  assert.ok(passed >= 20, `only ${passed} tests passed under the sanitizers:\n${out.slice(-2000)}`);
  assert.match(run.stdout, /^# fail 0/m);
});
