/**
 * Terminal transform over a REAL recorded session: the real `ssh` client under tmux, through the
 * gateway, to a real sshd, running vim (a full-screen program). Replaying the recorded frames
 * through the headless terminal ends on the screen the client saw (tmux's pane); rows are
 * asciicast-shaped; command lines become command rows; a redelivered event re-emits identical
 * pure rows; snapshots redraw the screen they were taken from.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import xtermHeadless from '@xterm/headless';
import type { ChainedEvent } from '@vigil/schemas';
import { startSshd, startSshHarness, sshInTmux, until, type Sshd, type SshHarness } from '@vigil/gateway/protocols/ssh/testkit';
import { TerminalTransform, emptyTerminalRows, splitMsgType, type TerminalRows } from './terminal.ts';

let sshd: Sshd;
let h: SshHarness;

before(async () => {
  sshd = await startSshd();
  h = await startSshHarness(sshd);
});
after(async () => {
  await h?.close();
  await sshd?.stop();
});

const trimLines = (lines: string[]): string[] => lines.map((l) => l.replace(/\s+$/, ''));

async function fold(t: TerminalTransform, events: ChainedEvent[], out: TerminalRows = emptyTerminalRows()): Promise<TerminalRows> {
  for (const e of events) t.fold(e, { sub: 'vim-user', target_id: 'web-1' }, out);
  await t.settle();
  return out;
}

test('vim over real ssh: the replayed screen equals the client screen; rows, commands, snapshots', async () => {
  const tm = sshInTmux(h, await h.issuer.mint('vim-user'), { user: 'vim-user@web-1', width: 90, height: 24 });
  let clientScreen: string[];
  let sid: string;
  try {
    await tm.waitFor(/^\$/m, 'prompt');
    tm.type('echo hello-term');
    tm.send(['Enter']);
    await tm.waitFor(/^hello-term/m, 'echo');
    tm.type(`vim -u NONE -N /tmp/vigil-vim-${process.pid}.txt`);
    tm.send(['Enter']);
    await tm.waitFor(/~\s*\n~/, 'vim started');
    tm.send(['i']);
    tm.type('The quick brown fox\njumps over\n\tthe lazy dog ');
    for (let i = 0; i < 60; i++) tm.type(`line ${i} of filler text for scrolling\n`);
    tm.send(['Escape']);
    tm.type('gg');
    tm.type(':set number');
    tm.send(['Enter']);
    await tm.waitFor(/^\s+1 The quick brown fox/m, 'vim redrawn with numbers');
    await new Promise((r) => setTimeout(r, 500)); // let the screen settle
    clientScreen = tm.capture().replace(/\n$/, '').split('\n');
    [sid] = h.sessionsOf('vim-user') as [string];
    await h.sink.drain();
    const events = h.session(sid).events;
    const t = new TerminalTransform({ snapshot_every_bytes: 2048, snapshot_every_us: 60_000_000 });
    const out = await fold(t, events);
    const replayed = t.screenText(sid, 0)!;
    assert.deepEqual(trimLines(replayed), trimLines(clientScreen), 'replayed screen = tmux pane');

    // asciicast-shaped rows: output and input base64 of the exact frames, a resize from pty-req.
    const frames = events.filter((e): e is Extract<ChainedEvent, { type: 'frame' }> => e.type === 'frame');
    const o = out.terminal.filter((r) => r.code === 'o');
    assert.equal(o.length, frames.filter((f) => f.direction === 's2c').length);
    assert.ok(Buffer.concat(o.map((r) => Buffer.from(r.data, 'base64'))).equals(Buffer.concat(frames.filter((f) => f.direction === 's2c').map((f) => Buffer.from(f.data)))));
    assert.equal(out.terminal.find((r) => r.code === 'r')?.data, '90x24');
    assert.ok(out.commands.some((c) => c.source === 'shell' && c.line === 'echo hello-term' && !c.blocked));
    assert.ok(out.commands.some((c) => c.line.startsWith('vim -u NONE -N /tmp/vigil-vim-')));
    assert.ok(out.terminal.some((r) => r.code === 'm' && r.data === 'echo hello-term'));

    // Snapshots: the last one redraws, in a fresh terminal, the screen of the emulator at its seq.
    assert.ok(out.terminal_snapshots.length >= 2, `snapshots: ${out.terminal_snapshots.length}`);
    const snap = out.terminal_snapshots.at(-1)!;
    const t2 = new TerminalTransform({ snapshot_every_bytes: 1 << 30, snapshot_every_us: 1e15 });
    await fold(t2, events.filter((e) => e.seq <= snap.seq));
    const fresh = new xtermHeadless.Terminal({ cols: snap.cols, rows: snap.rows, allowProposedApi: true });
    await new Promise<void>((r) => fresh.write(snap.screen, () => r()));
    const b = fresh.buffer.active;
    const drawn = Array.from({ length: snap.rows }, (_, i) => b.getLine(b.viewportY + i)?.translateToString(true) ?? '');
    assert.deepEqual(trimLines(drawn), trimLines(t2.screenText(sid, 0)!));

    // Redelivery: pure rows are identical, stateful rows are not produced twice.
    const again = await fold(t, events);
    assert.deepEqual(again.terminal.filter((r) => r.code !== 'm'), out.terminal.filter((r) => r.code !== 'm'));
    assert.equal(again.terminal_snapshots.length, 0);
    assert.equal(again.commands.filter((c) => c.source === 'shell').length, 0);

    tm.type(':q!');
    tm.send(['Enter']);
    await tm.waitFor(/vigil-vim-\d+\.txt\n\$/, 'back at the prompt');
    tm.type('exit');
    tm.send(['Enter']);
    await tm.waitFor(/\[ssh exited 0\]/, 'ssh exit');
  } finally {
    tm.kill();
  }
  await until(() => h.session(sid!).events.some((e) => e.type === 'session.ended'), 'ended');
});

test('splitMsgType reads the channel number', () => {
  assert.deepEqual(splitMsgType('SSH_MSG_CHANNEL_DATA/3'), ['SSH_MSG_CHANNEL_DATA', 3]);
  assert.deepEqual(splitMsgType('VIGIL_NOTICE/0'), ['VIGIL_NOTICE', 0]);
  assert.equal(splitMsgType('Q'), undefined);
  assert.equal(splitMsgType('X/-1'), undefined);
});
