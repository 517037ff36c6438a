import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlayerEvent as E, PlayerState as S, allowed, transition } from './player-state.ts';

test('play, pause, seek, end, replay from the end, live until it ends', () => {
  let s = S.Loading;
  for (const [e, want] of [
    [E.Ready, S.Paused], [E.Play, S.Playing], [E.Pause, S.Paused], [E.Seek, S.Loading], [E.Ready, S.Paused],
    [E.Play, S.Playing], [E.ReachedEnd, S.Ended], [E.Play, S.Loading], [E.Ready, S.Paused], [E.GoLive, S.Live], [E.LiveEnded, S.Ended],
  ] as const) {
    s = transition(s, e);
    assert.equal(s, want, `after ${e}`);
  }
});

test('illegal moves throw and are reported as not allowed', () => {
  assert.throws(() => transition(S.Loading, E.Play), /play is not allowed while loading/);
  assert.throws(() => transition(S.Live, E.Play));
  assert.equal(allowed(S.Failed, E.Play), false);
  assert.equal(allowed(S.Failed, E.Seek), true);
});
