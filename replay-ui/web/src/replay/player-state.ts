/**
 * The terminal player's state machine (as in asciinema-player): states and events as enums, the
 * transitions as data, a pure `transition` that throws on an illegal move, so the player's
 * behaviour is readable in one table and tested without a browser (player-state.test.ts).
 */
export enum PlayerState {
  /** Fetching the recording's frame or the page a seek needs; nothing to show yet at the target. */
  Loading = 'loading',
  /** The screen shows the recording at `position`; the clock is stopped. */
  Paused = 'paused',
  /** The clock runs; events are written to the screen as their time comes. */
  Playing = 'playing',
  /** The position reached the end of the stored recording. */
  Ended = 'ended',
  /** Following an active session: events are written as the store receives them. */
  Live = 'live',
  /** The recording could not be loaded. */
  Failed = 'failed',
}

export enum PlayerEvent {
  /** A frame or a seek target is on screen. */
  Ready = 'ready',
  Play = 'play',
  Pause = 'pause',
  /** Go to a position (fetches the nearest snapshot). */
  Seek = 'seek',
  /** The last stored event was written while playing. */
  ReachedEnd = 'reached_end',
  /** Follow the session live. */
  GoLive = 'go_live',
  /** The live session ended: what was shown is now a recording. */
  LiveEnded = 'live_ended',
  Fail = 'fail',
}

const T: Record<PlayerState, Partial<Record<PlayerEvent, PlayerState>>> = {
  [PlayerState.Loading]: { [PlayerEvent.Ready]: PlayerState.Paused, [PlayerEvent.Seek]: PlayerState.Loading, [PlayerEvent.GoLive]: PlayerState.Live, [PlayerEvent.Fail]: PlayerState.Failed },
  [PlayerState.Paused]: { [PlayerEvent.Play]: PlayerState.Playing, [PlayerEvent.Seek]: PlayerState.Loading, [PlayerEvent.GoLive]: PlayerState.Live, [PlayerEvent.Pause]: PlayerState.Paused },
  [PlayerState.Playing]: { [PlayerEvent.Pause]: PlayerState.Paused, [PlayerEvent.Seek]: PlayerState.Loading, [PlayerEvent.ReachedEnd]: PlayerState.Ended, [PlayerEvent.GoLive]: PlayerState.Live, [PlayerEvent.Fail]: PlayerState.Failed },
  [PlayerState.Ended]: { [PlayerEvent.Seek]: PlayerState.Loading, [PlayerEvent.Play]: PlayerState.Loading, [PlayerEvent.GoLive]: PlayerState.Live, [PlayerEvent.Pause]: PlayerState.Ended },
  [PlayerState.Live]: { [PlayerEvent.LiveEnded]: PlayerState.Ended, [PlayerEvent.Seek]: PlayerState.Loading, [PlayerEvent.Fail]: PlayerState.Failed, [PlayerEvent.Pause]: PlayerState.Live },
  [PlayerState.Failed]: { [PlayerEvent.Seek]: PlayerState.Loading },
};

export function transition(state: PlayerState, event: PlayerEvent): PlayerState {
  const next = T[state][event];
  if (next === undefined) throw new Error(`player: ${event} is not allowed while ${state}`);
  return next;
}

export function allowed(state: PlayerState, event: PlayerEvent): boolean {
  return T[state][event] !== undefined;
}
