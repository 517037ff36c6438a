/**
 * PromptWatch on scripted shell output (pure logic; the real bash cases are in policy.test.ts and
 * approval.test.ts). Each script answers the watch's Ctrl-C the way bash was seen to answer it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PromptWatch, type PromptWatchTimings } from './prompt-watch.ts';

const T: PromptWatchTimings = { idleMs: 5, retryMs: 25, quietMs: 10, settleMs: 600 };
const LINE = 'rm -rf /srv/data';

/** Run a watch; `answer(n)` gives the shell's output chunks for the n-th Ctrl-C (1-based). */
function run(answer: (n: number) => string[]): Promise<{ outcome: 'ready' | 'failed'; interrupts: number }> {
  return new Promise((resolve) => {
    let interrupts = 0;
    const w: PromptWatch = new PromptWatch(
      LINE,
      {
        interrupt: () => {
          interrupts++;
          const chunks = answer(interrupts);
          // Chunks come a little apart, as separate writes of the shell do.
          chunks.forEach((c, i) => setTimeout(() => w.output(Buffer.from(c, 'latin1')), i));
        },
        ready: () => resolve({ outcome: 'ready', interrupts }),
        failed: () => resolve({ outcome: 'failed', interrupts }),
      },
      T,
    );
  });
}

const FRESH = ['^C\x1b[?2004l\r', '\x1b[?2004h\x1b[?2004l\r', '\r\n', '\x1b[?2004h', '$ '];
const REDRAW = ['^C\x1b[?2004l\r', '\x1b[?2004h', `$ ${LINE}`];

test('an idle bash: "^C", a line break, a fresh prompt → ready after one Ctrl-C', async () => {
  assert.deepEqual(await run(() => FRESH), { outcome: 'ready', interrupts: 1 });
});

test('bash busy when the SIGINT came only redraws the line → Ctrl-C again, then ready', async () => {
  assert.deepEqual(await run((n) => (n === 1 ? REDRAW : FRESH)), { outcome: 'ready', interrupts: 2 });
});

test('a redraw of a wrapped line (a line break, then the line\'s end) is not a prompt', async () => {
  const wrapped = ['^C', `\r$ rm -rf /s\r\nrv/data`];
  assert.deepEqual(await run((n) => (n === 1 ? wrapped : FRESH)), { outcome: 'ready', interrupts: 2 });
});

test('a redraw with the cursor moved back (escape sequences, backspaces) is still the line', async () => {
  const moved = ['^C\r\n', `$ ${LINE}\x1b[5D`];
  const withBs = ['^C\r\n', `$ ${LINE}\b\b\b`];
  assert.deepEqual(await run((n) => (n === 1 ? moved : n === 2 ? withBs : FRESH)), { outcome: 'ready', interrupts: 3 });
});

test('a prompt with a window title and colours is a fresh prompt', async () => {
  const fancy = ['^C', '\r\n\x1b]0;ops@web-1: ~\x07\x1b[01;32mops@web-1\x1b[00m:\x1b[01;34m~\x1b[00m$ '];
  assert.deepEqual(await run(() => fancy), { outcome: 'ready', interrupts: 1 });
});

test('a prompt that comes well after its line break (PROMPT_COMMAND, a git prompt) is waited for, not interrupted', async () => {
  const slow = (n: number) => (n === 1 ? ['^C\r\n'] : []);
  const r = await new Promise<{ outcome: string; interrupts: number }>((resolve) => {
    let interrupts = 0;
    const w: PromptWatch = new PromptWatch(LINE, {
      interrupt: () => {
        interrupts++;
        for (const c of slow(interrupts)) setTimeout(() => w.output(Buffer.from(c)), 0);
        if (interrupts === 1) setTimeout(() => w.output(Buffer.from('\x1b(B\x1b[m(main) $ ')), T.retryMs * 4);
      },
      ready: () => resolve({ outcome: 'ready', interrupts }),
      failed: () => resolve({ outcome: 'failed', interrupts }),
    }, T);
  });
  assert.deepEqual(r, { outcome: 'ready', interrupts: 1 });
});

test('trailing blanks do not hide a redraw of the line', async () => {
  const padded = ['^C', `\r\n$ ${LINE}  `];
  assert.deepEqual(await run((n) => (n === 1 ? padded : FRESH)), { outcome: 'ready', interrupts: 2 });
});

test('a shell that ignores SIGINT answers nothing: Ctrl-C repeated, then failed', async () => {
  const r = await run(() => []);
  assert.equal(r.outcome, 'failed');
  assert.ok(r.interrupts >= 3, `repeated (${r.interrupts})`);
});

test('a line break alone, or an empty prompt, is not enough', async () => {
  assert.equal((await run(() => ['^C\r\n'])).outcome, 'failed');
});

test('the first Ctrl-C waits until the shell is done echoing the line', async () => {
  let echoing = true;
  const events: string[] = [];
  await new Promise<void>((resolve) => {
    // idleCap (3 × retryMs) must not cut in: only the idle time is under test.
    const t = { ...T, idleMs: 60, retryMs: 400, settleMs: 3000 };
    const w = new PromptWatch(LINE, { interrupt: () => events.push(echoing ? 'interrupt while echoing' : 'interrupt'), ready: () => resolve(), failed: () => resolve() }, t);
    // The echo keeps coming, a chunk every 3 ms (far less than idleMs apart), then stops.
    let i = 0;
    const tick = setInterval(() => {
      if (i++ < 4) return w.output(Buffer.from('x'));
      clearInterval(tick);
      echoing = false;
      setTimeout(() => w.output(Buffer.from('^C\r\n$ ')), t.idleMs * 2);
    }, 3);
  });
  assert.equal(events[0], 'interrupt');
});

test('cancel: no hook runs after the channel closed', async () => {
  const calls: string[] = [];
  const w = new PromptWatch(LINE, { interrupt: () => calls.push('interrupt'), ready: () => calls.push('ready'), failed: () => calls.push('failed') }, T);
  w.cancel();
  w.output(Buffer.from('^C\r\n$ '));
  await new Promise((r) => setTimeout(r, T.settleMs + 50));
  assert.deepEqual(calls, []);
});
