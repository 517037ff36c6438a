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
 */
import xtermHeadless from '@xterm/headless';
import serializeAddon from '@xterm/addon-serialize';
import type { ChainedEvent, PolicyBlocked, SshChannel, SshRequest } from '@vigil/schemas';
import { LineEditor } from '@vigil/gateway/protocols/ssh/line-editor';
import { chTime } from '../../sinks/clickhouse/rows.ts';

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
}

export const DEFAULT_TERMINAL_OPTIONS: TerminalOptions = { snapshot_every_bytes: 64 * 1024, snapshot_every_us: 10_000_000 };

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

  /** Fold one event of an SSH session into rows. `who` is the session's identity when known. */
  fold(e: ChainedEvent, who: { sub: string; target_id: string }, out: TerminalRows): void {
    let s = this.sessions.get(e.session_id);
    if (!s) this.sessions.set(e.session_id, (s = { channels: new Map(), last_seq: -1, sub: who.sub, target_id: who.target_id, lastLines: [] }));
    if (who.sub) s.sub = who.sub;
    if (who.target_id) s.target_id = who.target_id;
    const fresh = e.seq > s.last_seq;
    if (fresh) s.last_seq = e.seq;
    const time = chTime(e.time);
    const base = { session_id: e.session_id, seq: e.seq, time };
    switch (e.type) {
      case 'frame': {
        const parts = splitMsgType(e.msg_type);
        if (!parts) return;
        const [kind, n] = parts;
        const ch = this.channel(s, n);
        if (ch.kind === 'binary') return;
        if (e.direction === 's2c' && (kind === 'SSH_MSG_CHANNEL_DATA' || kind === 'SSH_MSG_CHANNEL_EXTENDED_DATA' || kind === 'VIGIL_NOTICE')) {
          out.terminal.push({ ...base, code: 'o', channel: n, data: Buffer.from(e.data).toString('base64') });
          if (fresh) this.output(e.session_id, ch, n, e.seq, e.time, e.data, out);
        } else if (e.direction === 'c2s' && kind === 'SSH_MSG_CHANNEL_DATA') {
          out.terminal.push({ ...base, code: 'i', channel: n, data: Buffer.from(e.data).toString('base64') });
          if (fresh && ch.kind === 'shell') {
            ch.editor ??= new LineEditor();
            s.lastLines = [];
            for (const l of ch.editor.push(e.data)) {
              if (l.line.trim() === '') continue;
              const row: CommandRow = { ...base, channel: n, sub: s.sub, target_id: s.target_id, source: 'shell', line: l.line, uncertain: l.uncertain, blocked: false, rule_id: '' };
              out.commands.push(row);
              s.lastLines.push(row);
              out.terminal.push({ ...base, code: 'm', channel: n, data: l.line });
            }
          }
        }
        return;
      }
      case 'ssh.request':
        return this.request(s, e, base, out, fresh);
      case 'ssh.channel':
        return this.channelEvent(s, e);
      case 'policy.blocked':
        return this.blocked(s, e, base, out);
      case 'session.ended':
        for (const ch of s.channels.values()) if (ch.term) this.queue(ch, () => ch.term!.dispose());
        this.sessions.delete(e.session_id);
        return;
      default:
        return;
    }
  }

  private channel(s: SessionTerm, n: number): ChannelState {
    let ch = s.channels.get(n);
    if (!ch) s.channels.set(n, (ch = { kind: 'pending', cols: 80, rows: 24, outputBytes: 0, sinceSnapshot: 0, lastSnapshotUs: 0 }));
    return ch;
  }

  private request(s: SessionTerm, e: SshRequest, base: { session_id: string; seq: number; time: string }, out: TerminalRows, fresh: boolean): void {
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
        out.commands.push({ ...base, channel: e.channel, sub: s.sub, target_id: s.target_id, source: 'exec', line: e.command ?? '', uncertain: false, blocked: false, rule_id: '' });
        out.terminal.push({ ...base, code: 'm', channel: e.channel, data: e.command ?? '' });
        return;
      case 'subsystem':
        ch.kind = 'binary'; // SFTP and friends are not terminal output (their file operations are ssh.file events)
        return;
      case 'exit-status':
        out.terminal.push({ ...base, code: 'x', channel: e.channel, data: String(e.exit_status ?? 0) });
        return;
      default:
        return;
    }
  }

  private channelEvent(s: SessionTerm, e: SshChannel): void {
    if (e.channel === undefined) return;
    if (e.action === 'open' && e.kind !== 'session') this.channel(s, e.channel).kind = 'binary';
    if (e.action === 'closed') {
      const ch = s.channels.get(e.channel);
      if (ch?.term) this.queue(ch, () => ch.term!.dispose());
      s.channels.delete(e.channel);
    }
  }

  private blocked(s: SessionTerm, e: PolicyBlocked, base: { session_id: string; seq: number; time: string }, out: TerminalRows): void {
    const channel = e.channel ?? 0;
    out.terminal.push({ ...base, code: 'm', channel, data: `blocked: ${e.statement}` });
    const pending = e.protocol_kind === 'ssh_shell' ? s.lastLines.find((r) => r.line === e.statement && r.channel === channel && !r.blocked) : undefined;
    if (pending) {
      pending.blocked = true;
      pending.rule_id = e.rule_id ?? '';
      return;
    }
    out.commands.push({ ...base, channel, sub: s.sub, target_id: s.target_id, source: e.protocol_kind === 'ssh_shell' ? 'shell' : 'exec', line: e.statement, uncertain: false, blocked: true, rule_id: e.rule_id ?? '' });
  }

  /** Feed output to the channel's emulator; snapshot past the byte or time threshold. */
  private output(session_id: string, ch: ChannelState, n: number, seq: number, timeUs: number, data: Uint8Array, out: TerminalRows): void {
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
            out.terminal_snapshots.push({ session_id, channel: n, seq, time: chTime(timeUs), cols: term.cols, rows: term.rows, output_bytes: outputBytes, screen: ch.serializer!.serialize({ scrollback: 0 }) });
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
