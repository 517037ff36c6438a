/**
 * Dropping a blocked shell line: the gateway sends the shell Ctrl-C and must know that the shell
 * really abandoned the line before anything typed after it goes on. This module decides that from
 * the shell's output alone (timers and text; the channel does the I/O).
 *
 * Why it is not "any answer, then quiet": bash keeps the line in two races, both seen against the
 * real shell and both ways around a block:
 *  - keys that reach the tty together with the Ctrl-C are read by readline before bash abandons
 *    the line, and the dropped text then runs with them appended;
 *  - a SIGINT that arrives while readline is busy with the line's keys (not blocked in read) only
 *    echoes "^C" and redraws the line as it was.
 * An idle readline does abandon the line: it prints "^C", a line break, and the prompt of a new
 * readline call with an empty line. So:
 *  1. the Ctrl-C goes once the shell has been quiet for `idleMs` (done echoing the line);
 *  2. the shell has abandoned the line once its output after the Ctrl-C has a line break, then
 *     text that is not the line redrawn (it does not end with the line's last characters), then
 *     `quietMs` of quiet; a line break with no text yet waits for the prompt;
 *  3. otherwise (no line break, or the line redrawn), after `retryMs` of quiet, Ctrl-C again
 *     (the shell is idle now);
 *  4. no fresh prompt within `settleMs` (a shell that ignores SIGINT, `trap '' INT`, still holds the
 *     line, and the next Enter would run it): `failed`, and the channel is closed.
 */

export interface PromptWatchTimings {
  idleMs: number;
  retryMs: number;
  quietMs: number;
  settleMs: number;
}

export const PROMPT_WATCH_TIMINGS: PromptWatchTimings = { idleMs: 30, retryMs: 150, quietMs: 40, settleMs: 5000 };

export interface PromptWatchHooks {
  /** Send the shell Ctrl-C (and record it). */
  interrupt(): void;
  /** The shell shows a fresh prompt: held input may go on. */
  ready(): void;
  /** No fresh prompt in time: the line may still be in the shell. */
  failed(): void;
}

/** How many of the line's last characters identify a redraw of it. */
const TAIL = 8;
/** Bound on the text kept after the last line break. */
const KEEP = 512;
// Terminal control sequences carry no text: CSI (cursor moves, modes), OSC (window titles in a
// prompt), other escapes (ESC ( B from tput sgr0, ESC 7/8, ESC =), a lone ESC, and the remaining C0
// controls (CR, BS, BEL, …; LF is handled apart).
// eslint-disable-next-line no-control-regex
const CONTROLS = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]|\x1b|[\x00-\x09\x0b-\x1f\x7f]/g;

export class PromptWatch {
  private interrupts = 0;
  private lastInterruptAt = 0;
  private sawBreak = false;
  /** Output (latin1, so bytes compare with the line's bytes) after the last line break since the last Ctrl-C. */
  private afterBreak = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly cap: NodeJS.Timeout;
  private readonly idleCap: NodeJS.Timeout;
  private done = false;
  private readonly tail: string;

  constructor(
    line: string,
    private readonly hooks: PromptWatchHooks,
    private readonly t: PromptWatchTimings = PROMPT_WATCH_TIMINGS,
  ) {
    const text = Buffer.from(line.trimEnd(), 'utf8').toString('latin1');
    this.tail = text.slice(-TAIL);
    this.cap = setTimeout(() => this.finish(hooks.failed), t.settleMs);
    // A shell that never stops printing still gets its Ctrl-C.
    this.idleCap = setTimeout(() => this.interrupts === 0 && this.interrupt(), t.retryMs * 3);
    this.timer = setTimeout(() => this.interrupt(), t.idleMs);
  }

  /** The shell's output (what the target sent on the channel). */
  output(d: Uint8Array): void {
    if (this.done) return;
    clearTimeout(this.timer);
    if (this.interrupts === 0) {
      this.timer = setTimeout(() => this.interrupt(), this.t.idleMs);
      return;
    }
    const s = Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('latin1');
    const nl = s.lastIndexOf('\n');
    if (nl >= 0) {
      this.sawBreak = true;
      this.afterBreak = s.slice(nl + 1);
    } else {
      this.afterBreak += s;
    }
    if (this.afterBreak.length > KEEP) this.afterBreak = this.afterBreak.slice(-KEEP);
    this.timer = setTimeout(() => this.settle(), this.sawBreak ? this.t.quietMs : this.t.retryMs);
  }

  /** The channel closed: no hook runs any more. */
  cancel(): void {
    this.done = true;
    this.clear();
  }

  /**
   * What follows the last line break: a fresh prompt (text, and not the line redrawn), nothing yet
   * (the prompt may be slow: PROMPT_COMMAND, a git prompt), or not a prompt (no line break, or the
   * line redrawn). Trailing blanks are not compared (the line's were trimmed too).
   */
  private afterBreakIs(): 'prompt' | 'nothing' | 'not' {
    if (!this.sawBreak) return 'not';
    const text = this.afterBreak.replace(CONTROLS, '').trimEnd();
    if (text.length === 0) return 'nothing';
    const k = Math.min(this.tail.length, text.length);
    return k === 0 || !text.endsWith(this.tail.slice(-k)) ? 'prompt' : 'not';
  }

  private settle(): void {
    if (this.done) return;
    const seen = this.afterBreakIs();
    if (seen === 'nothing') {
      // A line break, and the prompt still to come: wait for it (the cap still applies).
      this.timer = setTimeout(() => this.settle(), this.t.retryMs);
      return;
    }
    if (seen === 'not') return this.interrupt();
    // After a repeated Ctrl-C, wait until its own answer had time to come: a prompt that answered
    // an earlier one must not release keys that the later SIGINT would then cut.
    const wait = this.interrupts > 1 ? this.lastInterruptAt + this.t.retryMs - Date.now() : 0;
    if (wait > 0) {
      this.timer = setTimeout(() => this.settle(), wait);
      return;
    }
    this.finish(this.hooks.ready);
  }

  private interrupt(): void {
    if (this.done) return;
    clearTimeout(this.timer);
    this.interrupts++;
    this.lastInterruptAt = Date.now();
    this.sawBreak = false;
    this.afterBreak = '';
    this.hooks.interrupt();
    this.timer = setTimeout(() => this.settle(), this.t.retryMs);
  }

  private finish(then: () => void): void {
    if (this.done) return;
    this.done = true;
    this.clear();
    then();
  }

  private clear(): void {
    clearTimeout(this.cap);
    clearTimeout(this.idleCap);
    clearTimeout(this.timer);
  }
}
