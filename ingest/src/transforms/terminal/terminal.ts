/**
 * Terminal transform (SSH sessions): chained events → rows of `terminal` (asciicast o/i/r/m/x),
 * `terminal_snapshots` (headless-terminal screens for seeking) and `commands`.
 *
 * Pure rows: 'o', 'i', 'r', 'x' and the markers of exec commands and policy blocks depend on one
 * event each, so a redelivered batch re-emits identical rows (they collapse in the
 * ReplacingMergeTree). Stateful rows: shell command lines (line reconstruction over many frames)
 * and snapshots (a terminal emulator per channel) are produced once per seq, for events newer than
 * what this process already folded; a batch whose insert failed for good therefore loses its
 * snapshots and shell lines (seeking falls back to the previous snapshot), and after a restart
 * mid-session the emulator starts blank (docs/ssh.md).
 *
 * The emulator (@xterm/headless) parses asynchronously: `fold` queues writes, `settle` waits for
 * them so the snapshot rows join the same batch.
 *
 * Masking (issue 4): with a plan whose mask rules enable value detectors (the session's decision,
 * from the pipeline), output and input go through a stream masker per channel and direction
 * (mask.ts: a value split across frames is held back until it can be seen whole), the emulator is
 * fed the masked output (so snapshots equal a replay of the stored rows) and each snapshot's text is
 * scanned again, command lines and markers are masked. 'o'/'i' rows then depend on what was held
 * before: they are produced once per seq like snapshots, and the held bytes are part of the state the
 * pipeline snapshots and restores when a batch is rejected (`maskState`/`restoreMask`), so a
 * redelivered batch yields the same rows.
 */
import xtermHeadless from '@xterm/headless';
import serializeAddon from '@xterm/addon-serialize';
import type { ChainedEvent, PolicyBlocked, SshChannel, SshRequest } from '@vigil/schemas';
import { LineEditor } from '@vigil/gateway/protocols/ssh/line-editor';
import { NO_MASK, type MaskPlan } from '@vigil/gateway/mask/engine';
import { chTime } from '../../sinks/clickhouse/rows.ts';
import { DEFAULT_HOLD_MAX_BYTES, flushChunk, maskText, pushChunk, type StreamMaskState } from './mask.ts';

const { Terminal } = xtermHeadless;
const { SerializeAddon } = serializeAddon;

export interface TerminalRow {
  session_id: string;
  seq: number;
  code: 'o' | 'i' | 'r' | 'm' | 'x';
  channel: number;
  time: string;
  data: string;
}

export interface SnapshotRow {
  session_id: string;
  channel: number;
  seq: number;
  time: string;
  cols: number;
  rows: number;
  output_bytes: number;
  screen: string;
}

export interface CommandRow {
  session_id: string;
  seq: number;
  channel: number;
  time: string;
  sub: string;
  target_id: string;
  source: 'exec' | 'shell';
  line: string;
  uncertain: boolean;
  blocked: boolean;
  rule_id: string;
}

export interface TerminalRows {
  terminal: TerminalRow[];
  terminal_snapshots: SnapshotRow[];
  commands: CommandRow[];
}

export interface TerminalOptions {
  /** A snapshot after this many output bytes since the last one… */
  snapshot_every_bytes: number;
  /** …or this much recorded time (µs) since the last one, whichever comes first. */
  snapshot_every_us: number;
  /** Most bytes a channel's stream masker holds back waiting for the rest of a value (mask.ts). */
  hold_max_bytes?: number;
}

export const DEFAULT_TERMINAL_OPTIONS: TerminalOptions = { snapshot_every_bytes: 64 * 1024, snapshot_every_us: 10_000_000, hold_max_bytes: DEFAULT_HOLD_MAX_BYTES };

/** What the stream maskers of one session hold (cloneable: the pipeline snapshots it per batch). */
export interface MaskSnapshot {
  seq: number;
  held: [number, string, string][];
}

/** `SSH_MSG_CHANNEL_DATA/3` → ['SSH_MSG_CHANNEL_DATA', 3]. */
export function splitMsgType(msgType: string | undefined): [string, number] | undefined {
  if (!msgType) return undefined;
  const slash = msgType.lastIndexOf('/');
  if (slash < 0) return undefined;
  const n = Number(msgType.slice(slash + 1));
  return Number.isInteger(n) && n >= 0 ? [msgType.slice(0, slash), n] : undefined;
}

interface ChannelState {
  kind: 'pending' | 'shell' | 'exec' | 'binary';
  cols: number;
  rows: number;
  term?: InstanceType<typeof Terminal>;
  serializer?: InstanceType<typeof SerializeAddon>;
  outputBytes: number;
  sinceSnapshot: number;
  lastSnapshotUs: number;
  editor?: LineEditor;
}

interface SessionTerm {
  channels: Map<number, ChannelState>;
  last_seq: number;
  sub: string;
  target_id: string;
  /** Shell lines of the last c2s frame, to be marked blocked by a following policy.blocked. */
  lastLines: CommandRow[];
  /** seq of the last event the stream maskers took (restored with them on a rejected batch). */
  mask_seq: number;
  /** Per channel: output and input bytes held back by the stream maskers. */
  held: Map<number, { o: StreamMaskState; i: StreamMaskState }>;
}

interface FoldContext {
  s: SessionTerm;
  base: { session_id: string; seq: number; time: string };
  timeUs: number;
  out: TerminalRows;
  plan: MaskPlan;
  masking: boolean;
  fresh: boolean;
  maskFresh: boolean;
}

export const emptyTerminalRows = (): TerminalRows => ({ terminal: [], terminal_snapshots: [], commands: [] });

export class TerminalTransform {
  private readonly sessions = new Map<string, SessionTerm>();
  private pending: Promise<void>[] = [];

  constructor(private readonly options: TerminalOptions = DEFAULT_TERMINAL_OPTIONS) {}

  /** Live emulators (for stats). */
  get liveSessions(): number {
    return this.sessions.size;
  }

  /**
   * Fold one event of an SSH session into rows. `who` is the session's identity when known; `plan`
   * the session's masking decision for free text (NO_MASK: stored as recorded).
   */
  fold(e: ChainedEvent, who: { sub: string; target_id: string }, out: TerminalRows, plan: MaskPlan = NO_MASK): void {
    let s = this.sessions.get(e.session_id);
    if (!s) this.sessions.set(e.session_id, (s = { channels: new Map(), last_seq: -1, sub: who.sub, target_id: who.target_id, lastLines: [], mask_seq: -1, held: new Map() }));
    if (who.sub) s.sub = who.sub;
    if (who.target_id) s.target_id = who.target_id;
    const fresh = e.seq > s.last_seq;
    if (fresh) s.last_seq = e.seq;
    const masking = plan.hasDetectors;
    const maskFresh = e.seq > s.mask_seq;
    if (maskFresh) s.mask_seq = e.seq;
    const time = chTime(e.time);
    const base = { session_id: e.session_id, seq: e.seq, time };
    const ctx: FoldContext = { s, base, timeUs: e.time, out, plan, masking, fresh, maskFresh };
    switch (e.type) {
      case 'frame': {
        const parts = splitMsgType(e.msg_type);
        if (!parts) return;
        const [kind, n] = parts;
        const ch = this.channel(s, n);
        if (ch.kind === 'binary') return;
        if (e.direction === 's2c' && (kind === 'SSH_MSG_CHANNEL_DATA' || kind === 'SSH_MSG_CHANNEL_EXTENDED_DATA' || kind === 'VIGIL_NOTICE')) {
          if (!masking) {
            out.terminal.push({ ...base, code: 'o', channel: n, data: Buffer.from(e.data).toString('base64') });
            if (fresh) this.output(e.session_id, ch, n, e.seq, e.time, e.data, out, plan);
          } else if (maskFresh) {
            this.emitOutput(ctx, ch, n, e.time, pushChunk(this.heldOf(s, n).o, plan, e.data, this.holdMax));
          }
        } else if (e.direction === 'c2s' && kind === 'SSH_MSG_CHANNEL_DATA') {
          if (!masking) out.terminal.push({ ...base, code: 'i', channel: n, data: Buffer.from(e.data).toString('base64') });
          else if (maskFresh) {
            const bytes = pushChunk(this.heldOf(s, n).i, plan, e.data, this.holdMax);
            if (bytes.length > 0) out.terminal.push({ ...base, code: 'i', channel: n, data: bytes.toString('base64') });
          }
          if (fresh && ch.kind === 'shell') {
            ch.editor ??= new LineEditor();
            s.lastLines = [];
            for (const l of ch.editor.push(e.data)) {
              if (l.line.trim() === '') continue;
              const line = maskText(plan, l.line);
              const row: CommandRow = { ...base, channel: n, sub: s.sub, target_id: s.target_id, source: 'shell', line, uncertain: l.uncertain, blocked: false, rule_id: '' };
              out.commands.push(row);
              s.lastLines.push(row);
              out.terminal.push({ ...base, code: 'm', channel: n, data: line });
            }
          }
        }
        return;
      }
      case 'ssh.request':
        return this.request(ctx, e);
      case 'ssh.channel':
        return this.channelEvent(ctx, e);
      case 'policy.blocked':
        return this.blocked(s, e, base, out, plan);
      case 'session.ended':
        // Channels still open: what their maskers hold is stored now (rows keyed by this seq).
        for (const n of s.channels.keys()) this.flush(ctx, n);
        for (const ch of s.channels.values()) if (ch.term) this.queue(ch, () => ch.term!.dispose());
        this.sessions.delete(e.session_id);
        return;
      default:
        return;
    }
  }

  private get holdMax(): number {
    return this.options.hold_max_bytes ?? DEFAULT_HOLD_MAX_BYTES;
  }

  private heldOf(s: SessionTerm, n: number): { o: StreamMaskState; i: StreamMaskState } {
    let h = s.held.get(n);
    if (!h) s.held.set(n, (h = { o: { held: '' }, i: { held: '' } }));
    return h;
  }

  /** Masked output bytes: one 'o' row at this event's seq, and the emulator (snapshots) sees the same bytes. */
  private emitOutput(ctx: FoldContext, ch: ChannelState, n: number, timeUs: number, bytes: Buffer): void {
    if (bytes.length === 0) return;
    ctx.out.terminal.push({ ...ctx.base, code: 'o', channel: n, data: bytes.toString('base64') });
    if (ctx.fresh && ch.kind !== 'binary') this.output(ctx.base.session_id, ch, n, ctx.base.seq, timeUs, bytes, ctx.out, ctx.plan);
  }

  /** Emit what a channel's maskers hold (exit status, close, session end). */
  private flush(ctx: FoldContext, n: number): void {
    if (!ctx.masking || !ctx.maskFresh) return;
    const h = ctx.s.held.get(n);
    if (!h) return;
    const ch = ctx.s.channels.get(n);
    const o = flushChunk(h.o, ctx.plan);
    if (o.length > 0) {
      if (ch) this.emitOutput(ctx, ch, n, ctx.timeUs, o);
      else ctx.out.terminal.push({ ...ctx.base, code: 'o', channel: n, data: o.toString('base64') });
    }
    const i = flushChunk(h.i, ctx.plan);
    if (i.length > 0) ctx.out.terminal.push({ ...ctx.base, code: 'i', channel: n, data: i.toString('base64') });
  }

  /** What the stream maskers of a session hold (before a batch), for `restoreMask` if it is rejected. */
  maskState(session_id: string): MaskSnapshot | undefined {
    const s = this.sessions.get(session_id);
    if (!s) return undefined;
    return { seq: s.mask_seq, held: [...s.held].map(([n, h]) => [n, h.o.held, h.i.held]) };
  }

  restoreMask(session_id: string, snap: MaskSnapshot | undefined): void {
    let s = this.sessions.get(session_id);
    if (!s && snap) {
      // The rejected batch ended the session: bring its maskers back. The emulator and line editor
      // are gone for good (stateful rows are produced once per seq, see the header), hence last_seq.
      s = { channels: new Map(), last_seq: Number.MAX_SAFE_INTEGER, sub: '', target_id: '', lastLines: [], mask_seq: -1, held: new Map() };
      this.sessions.set(session_id, s);
    }
    if (!s) return;
    s.mask_seq = snap?.seq ?? -1;
    s.held = new Map((snap?.held ?? []).map(([n, o, i]) => [n, { o: { held: o }, i: { held: i } }]));
  }

  private channel(s: SessionTerm, n: number): ChannelState {
    let ch = s.channels.get(n);
    if (!ch) s.channels.set(n, (ch = { kind: 'pending', cols: 80, rows: 24, outputBytes: 0, sinceSnapshot: 0, lastSnapshotUs: 0 }));
    return ch;
  }

  private request(ctx: FoldContext, e: SshRequest): void {
    const { s, base, out, fresh } = ctx;
    const ch = this.channel(s, e.channel);
    switch (e.request) {
      case 'pty-req':
      case 'window-change':
        if (!e.accepted || e.cols === undefined || e.rows === undefined) return;
        out.terminal.push({ ...base, code: 'r', channel: e.channel, data: `${e.cols}x${e.rows}` });
        ch.cols = e.cols || 80;
        ch.rows = e.rows || 24;
        if (fresh && ch.term) this.queue(ch, () => ch.term!.resize(ch.cols, ch.rows));
        return;
      case 'shell':
        if (e.accepted) ch.kind = 'shell';
        return;
      case 'exec':
        if (!e.accepted) return; // a blocked exec is reported by its policy.blocked
        ch.kind = 'exec';
        {
          const line = maskText(ctx.plan, e.command ?? '');
          out.commands.push({ ...base, channel: e.channel, sub: s.sub, target_id: s.target_id, source: 'exec', line, uncertain: false, blocked: false, rule_id: '' });
          out.terminal.push({ ...base, code: 'm', channel: e.channel, data: line });
        }
        return;
      case 'subsystem':
        ch.kind = 'binary'; // SFTP and friends are not terminal output (their file operations are ssh.file events)
        return;
      case 'exit-status':
        this.flush(ctx, e.channel); // output held back belongs before the exit status
        out.terminal.push({ ...base, code: 'x', channel: e.channel, data: String(e.exit_status ?? 0) });
        return;
      default:
        return;
    }
  }

  private channelEvent(ctx: FoldContext, e: SshChannel): void {
    const { s } = ctx;
    if (e.channel === undefined) return;
    if (e.action === 'open' && e.kind !== 'session') this.channel(s, e.channel).kind = 'binary';
    if (e.action === 'closed') {
      this.flush(ctx, e.channel);
      s.held.delete(e.channel);
      const ch = s.channels.get(e.channel);
      if (ch?.term) this.queue(ch, () => ch.term!.dispose());
      s.channels.delete(e.channel);
    }
  }

  private blocked(s: SessionTerm, e: PolicyBlocked, base: { session_id: string; seq: number; time: string }, out: TerminalRows, plan: MaskPlan): void {
    const channel = e.channel ?? 0;
    const statement = maskText(plan, e.statement);
    out.terminal.push({ ...base, code: 'm', channel, data: `blocked: ${statement}` });
    const pending = e.protocol_kind === 'ssh_shell' ? s.lastLines.find((r) => r.line === statement && r.channel === channel && !r.blocked) : undefined;
    if (pending) {
      pending.blocked = true;
      pending.rule_id = e.rule_id ?? '';
      return;
    }
    out.commands.push({ ...base, channel, sub: s.sub, target_id: s.target_id, source: e.protocol_kind === 'ssh_shell' ? 'shell' : 'exec', line: statement, uncertain: false, blocked: true, rule_id: e.rule_id ?? '' });
  }

  /** Feed output to the channel's emulator; snapshot past the byte or time threshold. */
  private output(session_id: string, ch: ChannelState, n: number, seq: number, timeUs: number, data: Uint8Array, out: TerminalRows, plan: MaskPlan): void {
    if (!ch.term) {
      ch.term = new Terminal({ cols: ch.cols, rows: ch.rows, scrollback: 0, allowProposedApi: true });
      ch.serializer = new SerializeAddon();
      ch.term.loadAddon(ch.serializer);
      ch.lastSnapshotUs = timeUs;
    }
    ch.outputBytes += data.length;
    ch.sinceSnapshot += data.length;
    const due = ch.sinceSnapshot >= this.options.snapshot_every_bytes || timeUs - ch.lastSnapshotUs >= this.options.snapshot_every_us;
    const term = ch.term;
    const outputBytes = ch.outputBytes;
    const bytes = Uint8Array.from(data);
    if (due) {
      ch.sinceSnapshot = 0;
      ch.lastSnapshotUs = timeUs;
    }
    this.pending.push(
      new Promise<void>((resolve) => {
        term.write(bytes, () => {
          if (due) {
            // The emulator saw masked output; scanning the screen again catches a value drawn piecewise (cursor moves).
            const screen = maskText(plan, ch.serializer!.serialize({ scrollback: 0 }));
            out.terminal_snapshots.push({ session_id, channel: n, seq, time: chTime(timeUs), cols: term.cols, rows: term.rows, output_bytes: outputBytes, screen });
          }
          resolve();
        });
      }),
    );
  }

  /** Run `f` after the emulator has parsed everything written so far. */
  private queue(ch: ChannelState, f: () => void): void {
    const term = ch.term!;
    this.pending.push(new Promise<void>((resolve) => term.write('', () => {
      f();
      resolve();
    })));
  }

  /** Wait until every queued write was parsed (snapshot rows are then in `out`). */
  async settle(): Promise<void> {
    while (this.pending.length > 0) {
      const p = this.pending;
      this.pending = [];
      await Promise.all(p);
    }
  }

  /** The screen of a channel's emulator as plain text lines (tests compare it with the client's). */
  screenText(session_id: string, channel: number): string[] | undefined {
    const term = this.sessions.get(session_id)?.channels.get(channel)?.term;
    if (!term) return undefined;
    const b = term.buffer.active;
    return Array.from({ length: term.rows }, (_, i) => b.getLine(b.viewportY + i)?.translateToString(true) ?? '');
  }
}
