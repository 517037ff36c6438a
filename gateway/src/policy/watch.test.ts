import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watchPolicy, type PolicyHandle } from './watch.ts';
import { evaluate, type CompiledPolicy } from './compile.ts';
import { isPolicyError, type PolicyError } from './errors.ts';
import { agent, ctx, stmt } from './testkit.ts';

const V1 = 'version: 1\nrules:\n  - { id: v1, match: { actor_kind: agent }, block: true }\n';
const V2 = 'version: 1\nrules:\n  - { id: v2, match: { actor_kind: agent }, allow: true }\n';
const BAD = 'version: 1\nrules:\n  - { id: bad, match: { time: { timezone: Nowhere/City } }, block: true, colour: red }\n';
const WAIT_MS = 5000;

/** Collects callbacks and lets a test wait for the next one, bounded by a timeout. */
function recorder() {
  const changes: CompiledPolicy[] = [];
  const errors: PolicyError[] = [];
  let wake: (() => void) | undefined;
  const next = (what: string, done: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      if (done()) return resolve();
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
      wake = () => {
        if (!done()) return;
        clearTimeout(t);
        resolve();
      };
    });
  return {
    changes,
    errors,
    onChange: (p: CompiledPolicy) => (changes.push(p), wake?.()),
    onError: (e: PolicyError) => (errors.push(e), wake?.()),
    waitChanges: (n: number) => next(`${n} change(s)`, () => changes.length >= n),
    waitErrors: (n: number) => next(`${n} error(s)`, () => errors.length >= n),
  };
}

function setup(options?: Parameters<typeof watchPolicy>[3]) {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-policy-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, V1);
  const rec = recorder();
  const handle: PolicyHandle = watchPolicy(file, rec.onChange, rec.onError, { debounce_ms: 20, poll_interval_ms: 100, ...options });
  const cleanup = () => {
    handle.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, file, rec, handle, cleanup };
}

const ruleOf = (h: PolicyHandle) => evaluate(h.current(), ctx(agent, stmt(['read']))).rule_id;

test('the initial policy is in force at once; a valid change is swapped in', async (t) => {
  const { file, rec, handle, cleanup } = setup();
  t.after(cleanup);
  assert.equal(ruleOf(handle), 'v1');
  writeFileSync(file, V2);
  await rec.waitChanges(1);
  assert.equal(ruleOf(handle), 'v2');
  assert.equal(rec.changes[0], handle.current());
  assert.equal(rec.errors.length, 0);
});

test('an invalid change keeps the old policy and reports every problem; a later fix is swapped in', async (t) => {
  const { file, rec, handle, cleanup } = setup();
  t.after(cleanup);
  const before = handle.current();
  writeFileSync(file, BAD);
  await rec.waitErrors(1);
  assert.equal(handle.current(), before);
  assert.equal(ruleOf(handle), 'v1');
  const err = rec.errors[0];
  assert.ok(isPolicyError(err, 'GW_ERR_POLICY_INVALID'));
  assert.deepEqual(err.problems.map((p) => p.path).sort(), ['rules[0].colour', 'rules[0].match.time.timezone']);
  assert.equal(rec.changes.length, 0);
  // Polling sees nothing new: the same bad file is reported once, not every period.
  await new Promise((r) => setTimeout(r, 350));
  assert.equal(rec.errors.length, 1);
  writeFileSync(file, V2);
  await rec.waitChanges(1);
  assert.equal(ruleOf(handle), 'v2');
});

test('a replace by rename (how editors save) is seen', async (t) => {
  const { dir, file, rec, handle, cleanup } = setup();
  t.after(cleanup);
  const tmp = join(dir, '.policy.yaml.swp');
  writeFileSync(tmp, V2);
  renameSync(tmp, file);
  await rec.waitChanges(1);
  assert.equal(ruleOf(handle), 'v2');
});

test('a deleted file keeps the policy and reports GW_ERR_POLICY_READ once; recreating it reloads', async (t) => {
  const { file, rec, handle, cleanup } = setup();
  t.after(cleanup);
  unlinkSync(file);
  await rec.waitErrors(1);
  assert.ok(isPolicyError(rec.errors[0], 'GW_ERR_POLICY_READ'));
  assert.equal(rec.errors[0].retriable, true);
  assert.match(rec.errors[0].message, /ENOENT/);
  assert.equal(ruleOf(handle), 'v1');
  await new Promise((r) => setTimeout(r, 350));
  assert.equal(rec.errors.length, 1);
  writeFileSync(file, V2);
  await rec.waitChanges(1);
  assert.equal(ruleOf(handle), 'v2');
});

test('the stat poll alone finds changes (fs.watch can miss them on some filesystems)', async (t) => {
  const { file, rec, handle, cleanup } = setup({ use_fs_watch: false, poll_interval_ms: 50 });
  t.after(cleanup);
  writeFileSync(file, V2);
  await rec.waitChanges(1);
  assert.equal(ruleOf(handle), 'v2');
});

test('fs.watch alone finds changes (no poll)', async (t) => {
  const { file, rec, handle, cleanup } = setup({ poll_interval_ms: 0 });
  t.after(cleanup);
  writeFileSync(file, V2);
  await rec.waitChanges(1);
  assert.equal(ruleOf(handle), 'v2');
});

test('a file that is invalid at start throws instead of running without a policy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-policy-'));
  try {
    const file = join(dir, 'p.yaml');
    writeFileSync(file, BAD);
    assert.throws(() => watchPolicy(file, () => {}, () => {}), (e: unknown) => isPolicyError(e, 'GW_ERR_POLICY_INVALID') && e.problems.length === 2);
    assert.throws(() => watchPolicy(join(dir, 'missing.yaml'), () => {}, () => {}), (e: unknown) => isPolicyError(e, 'GW_ERR_POLICY_READ'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('after close, changes are ignored', async (t) => {
  const { file, rec, handle, cleanup } = setup();
  t.after(cleanup);
  handle.close();
  writeFileSync(file, V2);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(rec.changes.length, 0);
  assert.equal(ruleOf(handle), 'v1');
});
