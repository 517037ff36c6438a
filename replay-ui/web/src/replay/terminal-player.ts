/**
 * The terminal player: a clock over a driver's events, written to a `Screen` (an xterm.js terminal
 * in the UI, anything with the same three calls in tests). It holds only a window of the recording:
 * the page being played and the next one, fetched as the buffer runs low. Seeking writes the
 * nearest stored snapshot, then the events between it and the target, so a seek to the end of a
 * 100 MB recording costs one snapshot and at most one snapshot interval of output.
 */
import { PlayerEvent, PlayerState, allowed, transition } from './player-state.ts';
import { bytesOf, followLive, type TerminalDriver, type TerminalEvent, type TerminalInfo, type TerminalPage } from './terminal-driver.ts';

export interface Screen {
  /** Blank terminal of this size (modes, cursor and colours reset). */
  reset(cols: number, rows: number): void;
  resize(cols: number, rows: number): void;
  /** Written in order; bytes are UTF-8 and may split a character across two writes. */
  write(data: Uint8Array | string): void;
}

/** Refill when fewer events than this are buffered ahead of the clock. */
const LOW_WATER = 100;
/** The clock wakes at least this often while playing (progress display). */
const MAX_TICK_MS = 100;

export class TerminalPlayer {
  state = PlayerState.Loading;
  info: TerminalInfo | null = null;
  position_us = 0;
  speed = 1;
  error: string | null = null;
  /** Seeks completed so far (a view or a test can tell a finished seek from the state before it). */
  seeks = 0;

  private buffer: TerminalEvent[] = [];
  private more: number | null = null; // next_after_seq
  private fetching: Promise<void> | null = null;
  private generation = 0;
  private clockAt = { wall: 0, pos: 0 };
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopLive: (() => void) | null = null;
  private cols = 80;
  private rows = 24;

  constructor(
    private readonly driver: TerminalDriver,
    private readonly screen: Screen,
    private readonly sessionId: string,
    private readonly onChange: () => void,
  ) {}

  get duration_us(): number {
    return this.info?.duration_us ?? 0;
  }

  private to(e: PlayerEvent): void {
    this.state = transition(this.state, e);
    this.onChange();
  }

  /** Load the frame; then show `at_us` (paused), or follow live when the session is active and no time was asked. */
  async load(at_us?: number): Promise<void> {
    try {
      this.info = await this.driver.info();
    } catch (e) {
      this.error = (e as Error).message;
      return this.to(PlayerEvent.Fail);
    }
    if (this.info.live && at_us === undefined) return this.goLive();
    await this.seek(at_us ?? 0);
  }

  /** Show the recording at `at_us`; keeps playing if it was. */
  async seek(at_us: number): Promise<void> {
    if (!this.info || !this.driver.seek) return;
    const resume = this.state === PlayerState.Playing;
    this.halt();
    const gen = ++this.generation;
    if (this.state !== PlayerState.Loading) this.to(PlayerEvent.Seek);
    const target = Math.max(0, Math.min(at_us, this.duration_us));
    try {
      const page = await this.driver.seek(target);
      if (gen !== this.generation) return;
      this.start(page);
      // Write everything up to the target, fetching on while the target lies beyond the page.
      for (;;) {
        this.writeUntil(target);
        if (this.buffer.length > 0 || this.more === null) break;
        const next = await this.driver.next(this.more);
        if (gen !== this.generation) return;
        this.append(next);
      }
    } catch (e) {
      if (gen !== this.generation) return;
      this.error = (e as Error).message;
      return this.to(PlayerEvent.Fail);
    }
    this.position_us = target;
    this.seeks++;
    this.to(PlayerEvent.Ready);
    if (resume) this.play();
  }

  play(): void {
    if (this.state === PlayerState.Ended) {
      void this.seek(0).then(() => this.state === PlayerState.Paused && this.play());
      return;
    }
    if (!allowed(this.state, PlayerEvent.Play)) return;
    if (this.position_us >= this.duration_us && this.buffer.length === 0 && this.more === null) {
      void this.seek(0).then(() => this.state === PlayerState.Paused && this.play());
      return;
    }
    this.clockAt = { wall: performance.now(), pos: this.position_us };
    this.to(PlayerEvent.Play);
    this.tick();
  }

  pause(): void {
    if (this.state !== PlayerState.Playing) return;
    this.position_us = this.clock();
    this.halt();
    this.to(PlayerEvent.Pause);
  }

  setSpeed(speed: number): void {
    if (this.state === PlayerState.Playing) this.clockAt = { wall: performance.now(), pos: this.clock() };
    this.speed = speed;
    this.onChange();
  }

  /** Follow the session as the store receives it (catch-up from the latest snapshot first). */
  goLive(): void {
    if (!allowed(this.state, PlayerEvent.GoLive)) return;
    this.halt();
    const gen = ++this.generation;
    this.to(PlayerEvent.GoLive);
    this.stopLive = followLive(this.sessionId, {
      info: (info) => {
        this.info = info;
        this.screen.reset((this.cols = info.cols), (this.rows = info.rows));
      },
      snapshot: (s) => {
        this.screen.reset((this.cols = s.cols), (this.rows = s.rows));
        this.screen.write(s.screen);
        this.position_us = s.t_us;
      },
      events: (events) => {
        if (gen !== this.generation) return;
        for (const e of events) this.apply(e);
        const last = events[events.length - 1];
        if (last && this.info) {
          this.position_us = last.t_us;
          this.info = { ...this.info, duration_us: Math.max(this.info.duration_us, last.t_us) };
        }
        this.onChange();
      },
      end: () => {
        if (gen !== this.generation) return;
        this.stopLive = null;
        // The recording is complete now: reload its frame (markers, duration) for replay.
        void this.driver.info().then((info) => {
          this.info = info;
          this.position_us = info.duration_us;
          this.to(PlayerEvent.LiveEnded);
        });
      },
      error: (message) => {
        this.error = message;
        this.to(PlayerEvent.Fail);
      },
    }, this.info?.channel);
  }

  dispose(): void {
    this.halt();
    this.generation++;
  }

  private halt(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stopLive?.();
    this.stopLive = null;
  }

  private clock(): number {
    return Math.min(this.duration_us, this.clockAt.pos + (performance.now() - this.clockAt.wall) * 1000 * this.speed);
  }

  private start(page: TerminalPage): void {
    const s = page.snapshot;
    this.cols = s?.cols ?? this.info!.cols;
    this.rows = s?.rows ?? this.info!.rows;
    this.screen.reset(this.cols, this.rows);
    if (s) this.screen.write(s.screen);
    this.buffer = [];
    this.append(page);
  }

  private append(page: TerminalPage): void {
    this.buffer.push(...page.events);
    this.more = page.next_after_seq;
  }

  private apply(e: TerminalEvent): void {
    if (e.code === 'o') this.screen.write(bytesOf(e.data));
    else if (e.code === 'r') {
      const m = /^(\d+)x(\d+)$/.exec(e.data);
      if (m) this.screen.resize((this.cols = Number(m[1])), (this.rows = Number(m[2])));
    }
    // 'm' (markers) are the command list's; 'x' (exit status) changes nothing on screen.
  }

  /** Write buffered events due at `pos`; returns how many are left. */
  private writeUntil(pos: number): void {
    let i = 0;
    while (i < this.buffer.length && this.buffer[i]!.t_us <= pos) this.apply(this.buffer[i++]!);
    if (i > 0) this.buffer.splice(0, i);
  }

  private refill(): void {
    if (this.fetching || this.more === null) return;
    const gen = this.generation;
    this.fetching = this.driver.next(this.more).then(
      (page) => {
        if (gen === this.generation) this.append(page);
      },
      (e: Error) => {
        if (gen !== this.generation) return;
        this.error = e.message;
        this.halt();
        this.to(PlayerEvent.Fail);
      },
    ).finally(() => {
      this.fetching = null;
      if (gen === this.generation && this.state === PlayerState.Playing) this.tick();
    });
  }

  private tick = (): void => {
    this.timer = null;
    if (this.state !== PlayerState.Playing) return;
    const pos = this.clock();
    this.writeUntil(pos);
    this.position_us = pos;
    if (this.buffer.length < LOW_WATER) this.refill();
    if (this.buffer.length === 0 && this.more === null && !this.fetching) {
      this.position_us = this.duration_us;
      return this.to(PlayerEvent.ReachedEnd);
    }
    this.onChange();
    const next = this.buffer[0];
    const wait = next ? (next.t_us - pos) / 1000 / this.speed : MAX_TICK_MS;
    this.timer = setTimeout(this.tick, Math.max(0, Math.min(MAX_TICK_MS, wait)));
  };
}
