/**
 * DataPathYield: lets ingest step aside while the gateway beside it (same process, `vigil start`)
 * is busy, without letting indexing fall behind without bound.
 *
 * Before each log batch the source asks `wait()`. While the gateway is busy, it waits — for at
 * most `max_defer_ms` from the first deferral of the episode. When that window runs out, deferral
 * is disarmed until ingest has caught up, so under sustained load ingest reads continuously
 * instead of starving. Caught up = the log had nothing for ingest for `caught_up_gap_ms`: batches
 * of a backlog arrive back to back (the consumer's batch size says nothing here — the local log
 * also caps a read at 1 MiB and at segment ends). `release()` ends any wait at once (shutdown).
 */
export interface YieldOptions {
  max_defer_ms: number;
  /** A pause this long between one batch done and the next arriving means the log was drained. */
  caught_up_gap_ms?: number;
}

export interface YieldStats {
  /** Deferral episodes started, and total time spent deferring (ms). */
  deferrals: number;
  deferred_ms: number;
  /** Windows that ran out under load (ingest then drained the log before deferring again). */
  windows_exhausted: number;
}

export class DataPathYield {
  private busy = false;
  private armed = true;
  private released = false;
  private since: number | undefined;
  private lastDone: number | undefined;
  private wake: (() => void) | undefined;
  readonly stats: YieldStats = { deferrals: 0, deferred_ms: 0, windows_exhausted: 0 };

  constructor(
    private readonly options: YieldOptions,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The gateway's load changed. */
  setBusy(busy: boolean): void {
    this.busy = busy;
    if (!busy) this.wake?.();
  }

  /** Resolves when ingest may read the next batch. */
  async wait(): Promise<void> {
    if (this.options.max_defer_ms === 0 || this.released) return;
    if (!this.armed && this.lastDone !== undefined && this.now() - this.lastDone >= (this.options.caught_up_gap_ms ?? 250)) this.armed = true;
    if (!this.armed) return;
    if (!this.busy) {
      this.since = undefined;
      return;
    }
    const started = this.now();
    if (this.since === undefined) {
      this.since = started;
      this.stats.deferrals++;
    }
    while (this.busy && !this.released) {
      const left = this.since + this.options.max_defer_ms - this.now();
      if (left <= 0) {
        this.armed = false;
        this.since = undefined;
        this.stats.windows_exhausted++;
        break;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    this.stats.deferred_ms += this.now() - started;
    if (!this.busy) this.since = undefined;
  }

  /** A batch was handled (the gap to the next one tells whether the log was drained). */
  batchDone(): void {
    this.lastDone = this.now();
  }

  /** Never wait again (shutdown). */
  release(): void {
    this.released = true;
    this.wake?.();
  }
}
