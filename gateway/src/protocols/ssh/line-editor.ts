/**
 * Interactive command-line reconstruction from what the client types into a shell channel (pure:
 * `push(bytes)` in, events out). It models a line editor like readline's emacs mode closely enough
 * to judge the line at Enter:
 *
 * - printable characters insert at the cursor; UTF-8 is decoded across chunks;
 * - Backspace (DEL 0x7f, BS 0x08) deletes before the cursor; Ctrl-U kills to the start;
 *   Ctrl-W kills the previous blank-delimited word; Ctrl-K kills to the end; Ctrl-A/Ctrl-E and the
 *   Left/Right/Home/End/Delete keys move or delete (best effort);
 * - bracketed paste (ESC [200~ … ESC [201~) inserts the pasted text literally, newlines included
 *   (a pasted newline runs the line in bash ≥ 5.1 only after the closing marker; we judge the whole
 *   paste at the next Enter);
 * - Enter (CR or LF outside a paste) ends the line;
 * - Ctrl-C clears the line; Up/Down (history), Tab (completion) and Ctrl-R make the line unknown:
 *   the shell changed it in ways the gateway cannot see, so `uncertain` is set and the policy is
 *   applied to what the gateway does know (documented in docs/ssh.md).
 *
 * The editor never changes bytes: the relay decides what to forward (everything up to Enter; the
 * Enter itself only if the line is allowed).
 */

export interface LineEvent {
  /** Offset in the pushed chunk just past the Enter byte. */
  end: number;
  /** The index of the Enter byte in the pushed chunk. */
  enter: number;
  line: string;
  /** History, completion or search touched the line: its real text may differ. */
  uncertain: boolean;
  /** The line was longer than the editor keeps (`maxLine`): `line` is only its start. */
  truncated: boolean;
}

/** Bash joins a line that ends in an odd number of backslashes with the next one (the pair goes). */
export function continuesLine(line: string): boolean {
  const m = /\\+$/.exec(line);
  return m !== null && m[0].length % 2 === 1;
}

const ESC = 0x1b;
const PASTE_START = '[200~';
const PASTE_END = '[201~';

export class LineEditor {
  private chars: string[] = [];
  private cursor = 0;
  private uncertain = false;
  private truncated = false;
  private pasting = false;
  /** An escape sequence being collected (after ESC). */
  private esc: string | undefined;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  /**
   * `maxLine`: hard bound on a line (a paste of a whole file stays bounded in memory).
   * `literal`: the shell has no terminal, so no line discipline or readline edits what it reads:
   * every byte is text and only LF ends a line (Backspace, Ctrl-U, escapes are characters of the
   * line, as the shell will see them). As the shell reads them, NUL bytes are skipped and a
   * backslash-newline joins two lines into one.
   */
  constructor(
    readonly maxLine = 64 * 1024,
    private readonly literal = false,
  ) {}

  /** Feed client bytes; returns every completed line (Enter presses) in order. */
  push(chunk: Uint8Array): LineEvent[] {
    const out: LineEvent[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.literal) {
        if (b === 0x00) continue;
        if (b === 0x0a && continuesLine(this.chars.join(''))) {
          this.chars.pop();
          this.cursor = this.chars.length;
        } else if (b === 0x0a) {
          out.push(this.lineEvent(i));
        } else this.insert(this.decode(b));
        continue;
      }
      if (this.esc !== undefined) {
        this.esc += String.fromCharCode(b);
        if (this.escDone()) this.applyEscape();
        continue;
      }
      if (b === ESC) {
        this.esc = '';
        continue;
      }
      if ((b === 0x0d || b === 0x0a) && !this.pasting) {
        out.push(this.lineEvent(i));
        continue;
      }
      if (this.pasting) {
        this.insert(b === 0x0d ? '\n' : this.decode(b));
        continue;
      }
      switch (b) {
        case 0x7f:
        case 0x08:
          if (this.cursor > 0) this.chars.splice(--this.cursor, 1);
          break;
        case 0x15: // Ctrl-U
          this.chars.splice(0, this.cursor);
          this.cursor = 0;
          break;
        case 0x17: // Ctrl-W: previous word (blank-delimited, as unix-word-rubout)
          this.killWord();
          break;
        case 0x0b: // Ctrl-K
          this.chars.length = this.cursor;
          break;
        case 0x01: // Ctrl-A
          this.cursor = 0;
          break;
        case 0x05: // Ctrl-E
          this.cursor = this.chars.length;
          break;
        case 0x02: // Ctrl-B
          if (this.cursor > 0) this.cursor--;
          break;
        case 0x06: // Ctrl-F
          if (this.cursor < this.chars.length) this.cursor++;
          break;
        case 0x03: // Ctrl-C: the shell discards the line
          this.reset();
          break;
        case 0x09: // Tab: completion inserts text we do not see
        case 0x12: // Ctrl-R: history search
        case 0x10: // Ctrl-P: previous history
        case 0x0e: // Ctrl-N: next history
        case 0x19: // Ctrl-Y: yank
          this.uncertain = true;
          break;
        default:
          if (b >= 0x20) this.insert(this.decode(b));
          // Other control characters (Ctrl-D on a non-empty line, Ctrl-L, …) do not change the line.
          break;
      }
    }
    return out;
  }

  /** The line so far (for tests and for the approval display). */
  get current(): string {
    return this.chars.join('');
  }

  private decode(b: number): string {
    return this.decoder.decode(Uint8Array.of(b), { stream: true });
  }

  /** The line ends at the Enter byte at `i`; the editor starts a new one. */
  private lineEvent(i: number): LineEvent {
    const ev = { enter: i, end: i + 1, line: this.chars.join(''), uncertain: this.uncertain, truncated: this.truncated };
    this.reset();
    return ev;
  }

  private insert(s: string): void {
    if (s === '') return;
    if (this.chars.length >= this.maxLine) {
      this.truncated = true;
      return;
    }
    this.chars.splice(this.cursor, 0, s);
    this.cursor++;
  }

  private killWord(): void {
    let i = this.cursor;
    while (i > 0 && /\s/.test(this.chars[i - 1]!)) i--;
    while (i > 0 && !/\s/.test(this.chars[i - 1]!)) i--;
    this.chars.splice(i, this.cursor - i);
    this.cursor = i;
  }

  private reset(): void {
    this.chars = [];
    this.cursor = 0;
    this.uncertain = false;
    this.truncated = false;
    // A UTF-8 sequence cut by the line's end does not carry into the next line.
    this.decoder.decode();
  }

  /** CSI (ESC [ … final 0x40–0x7e) or SS3 (ESC O x) or a two-byte Meta sequence. */
  private escDone(): boolean {
    const s = this.esc!;
    if (s.length === 0) return false;
    if (s[0] === '[') return s.length > 1 && /[\x40-\x7e]/.test(s[s.length - 1]!) ? true : s.length > 32;
    if (s[0] === 'O') return s.length === 2;
    return true;
  }

  private applyEscape(): void {
    const s = this.esc!;
    this.esc = undefined;
    if (s === PASTE_START) {
      this.pasting = true;
      return;
    }
    if (s === PASTE_END) {
      this.pasting = false;
      return;
    }
    if (this.pasting) {
      // An escape inside a paste is pasted text.
      for (const c of '\x1b' + s) this.insert(c);
      return;
    }
    switch (s) {
      case '[D':
      case 'OD':
        if (this.cursor > 0) this.cursor--;
        break;
      case '[C':
      case 'OC':
        if (this.cursor < this.chars.length) this.cursor++;
        break;
      case '[H':
      case 'OH':
      case '[1~':
        this.cursor = 0;
        break;
      case '[F':
      case 'OF':
      case '[4~':
        this.cursor = this.chars.length;
        break;
      case '[3~': // Delete
        if (this.cursor < this.chars.length) this.chars.splice(this.cursor, 1);
        break;
      case '[A': // Up, Down: history
      case 'OA':
      case '[B':
      case 'OB':
        this.uncertain = true;
        break;
      default:
        // Meta-key editing (M-d, M-b, …) and unknown sequences: we may not know the result.
        if (s.length === 1) this.uncertain = true;
        break;
    }
  }
}
