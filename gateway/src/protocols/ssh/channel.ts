/**
 * One `session` channel (RFC 4254 §6) through the gateway: the client's channel (ssh2 server side)
 * and its twin on the target (ssh2 client side), opened when the client asks for shell, exec or a
 * subsystem. Requests that precede it (pty-req, env) are held and sent with the open.
 *
 * Recording: every data chunk in both directions is a `frame` event (msg_type
 * `SSH_MSG_CHANNEL_DATA/<n>`, stderr `SSH_MSG_CHANNEL_EXTENDED_DATA/<n>`) recorded before it is
 * forwarded; what the gateway itself writes to the client (a block notice) is a `VIGIL_NOTICE/<n>`
 * frame and what it injects toward the target a `VIGIL_INJECT/<n>` frame, so the client's two byte
 * streams are exactly the recorded ones. Requests are `ssh.request` events, lifecycle `ssh.channel`.
 */
import type { ClientChannel, PseudoTtyInfo, ServerChannel, Session as ServerSession } from 'ssh2';
import type { SshRequest } from '@vigil/schemas';
import type { SshChannelKind } from '../../policy/schema.ts';
import { commandContext, judgeChannel, judgeCommand } from './commands.ts';
import { SessionHolds, notApprovedMessage } from '../../approvals/session-hold.ts';
import type { ApprovalAction } from '../../policy/schema.ts';
import { LineEditor, continuesLine } from './line-editor.ts';
import { PromptWatch } from './prompt-watch.ts';
import { SftpObserver, type FileOp } from './sftp.ts';
import { ScpObserver, scpMode } from './scp.ts';
import type { SshSession } from './ssh-session.ts';
import type { GatewayErrorCode } from '../../errors.ts';

type RequestFields = Omit<SshRequest, 'type' | 'version' | 'channel' | 'direction' | 'request' | 'accepted' | keyof BaseEnvelope>;
type BaseEnvelope = Pick<SshRequest, 'event_id' | 'time' | 'session_id' | 'seq' | 'prev_hash' | 'hash' | 'gateway_id' | 'gateway_version'>;

const MAX_ENV = 64;
const MAX_TERM_DIM = 10_000;
const ENV_VALUE_CLIP = 1024;
/** Names whose values are not recorded (they are still passed to the target). */
const SECRET_ENV = /pass|secret|token|key|cred|auth/i;
/** Exit status when the gateway refuses an exec command (as a shell does for "cannot execute"). */
export const BLOCKED_EXIT_STATUS = 126;

function clip(s: string, n: number): string {
  return s.length > n ? s.slice(0, n) : s;
}

export class SessionChannel {
  private pty: PseudoTtyInfo | undefined;
  private readonly env: Record<string, string> = {};
  private envCount = 0;
  private started = false;
  private closed = false;
  private client: ServerChannel | undefined;
  private upstream: ClientChannel | undefined;
  private kind: SshChannelKind | undefined;
  /** Allowed forwarding requests, sent with the shell/exec open. */
  private agentForward = false;
  private x11: { single: boolean; screen: number; protocol: string; cookie: string } | undefined;
  private editor: LineEditor | undefined;
  private sftp: SftpObserver | undefined;
  private scp: ScpObserver | undefined;
  /** window-change flood damping. */
  private lastResizeAt = 0;
  private pendingResize: { cols: number; rows: number; width: number; height: number } | undefined;
  private coalesced = 0;
  private resizeTimer: NodeJS.Timeout | undefined;
  private readonly dataType: string;
  private readonly errType: string;
  /** Approval waits of this channel (one at a time): an exec before it starts, or a shell line's Enter. */
  private holds: SessionHolds | undefined;
  /** Shell input that arrived while a line waits for approval (processed, in order, after it). */
  private pendingInput: Buffer[] = [];
  private lineWaiting = false;
  /** Watches the target's output while a dropped line's Ctrl-C is being handled (prompt-watch.ts). */
  private promptWatch: PromptWatch | undefined;
  /** Signals the client asked for while a line waits (sent after it: a SIGWINCH redraws the line). */
  private pendingSignals: string[] = [];
  /** Without a terminal: the bytes after the last complete line, held until it is complete and judged. */
  private rawTail: Buffer = Buffer.alloc(0);
  /** The text of lines ending in a backslash so far (with a terminal): the next line continues it. */
  private continued: string | undefined;
  /** The client sent EOF while a line waited: it goes to the shell after the input before it. */
  private eofPending = false;

  constructor(
    private readonly session: SshSession,
    readonly n: number,
    private readonly raw: ServerSession,
  ) {
    this.dataType = `SSH_MSG_CHANNEL_DATA/${n}`;
    this.errType = `SSH_MSG_CHANNEL_EXTENDED_DATA/${n}`;
    session.event({ type: 'ssh.channel', version: 1, channel: n, action: 'open', kind: 'session' });
    raw.on('pty', (accept, reject, info) => this.onPty(accept, reject, info));
    raw.on('env', (accept, reject, info) => this.onEnv(accept, reject, info.key, info.val));
    raw.on('window-change', (accept, reject, info) => this.onWindowChange(accept, reject, info));
    raw.on('signal', (accept, reject, info) => this.onSignal(accept, reject, info.name));
    raw.on('x11', (accept, reject, info) => this.onForwardingRequest('x11-req', 'x11', accept, reject, info));
    raw.on('auth-agent', (accept, reject) => this.onForwardingRequest('auth-agent-req@openssh.com', 'agent', accept, reject));
    raw.on('shell', (accept, reject) => this.onStart('shell', accept, reject));
    raw.on('exec', (accept, reject, info) => this.onStart('exec', accept, reject, info.command));
    raw.on('subsystem', (accept, reject, info) => this.onStart('subsystem', accept, reject, info.name));
    raw.on('close', () => this.close('client'));
  }

  private request(direction: 'c2s' | 's2c', request: string, accepted: boolean, fields: RequestFields = {}): void {
    this.session.event({ type: 'ssh.request', version: 1, channel: this.n, direction, request, accepted, ...fields });
  }

  private invalid(request: string, reason: string, reject?: () => void): void {
    reject?.();
    this.request('c2s', request, false, { code: 'GW_ERR_SSH_REQUEST_INVALID', reason });
  }

  private onPty(accept: (() => void) | undefined, reject: (() => void) | undefined, info: PseudoTtyInfo): void {
    if (this.started) return this.invalid('pty-req', 'a PTY must be requested before the shell or command starts', reject);
    if (!validSize(info.cols, info.rows)) return this.invalid('pty-req', 'terminal size out of range', reject);
    this.pty = info;
    accept?.();
    this.request('c2s', 'pty-req', true, { term: clip(info.term, 256), cols: info.cols, rows: info.rows, width_px: info.width, height_px: info.height });
  }

  private onEnv(accept: (() => void) | undefined, reject: (() => void) | undefined, name: string, value: string): void {
    if (this.started || this.envCount >= MAX_ENV || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      return this.invalid('env', this.started ? 'env must come before the shell or command starts' : 'too many or malformed environment variables', reject);
    }
    this.env[name] = value;
    this.envCount++;
    accept?.();
    this.request('c2s', 'env', true, { name: clip(name, 1024), ...(SECRET_ENV.test(name) ? {} : { value: clip(value, ENV_VALUE_CLIP) }) });
  }

  private onWindowChange(accept: (() => void) | undefined, reject: (() => void) | undefined, info: { cols: number; rows: number; width: number; height: number }): void {
    if (!validSize(info.cols, info.rows)) return this.invalid('window-change', 'terminal size out of range', reject);
    accept?.();
    if (!this.upstream) {
      // Before the shell: it only updates the PTY that will be requested.
      if (this.pty) this.pty = { ...this.pty, cols: info.cols, rows: info.rows, width: info.width, height: info.height };
      this.request('c2s', 'window-change', true, { cols: info.cols, rows: info.rows, width_px: info.width, height_px: info.height });
      return;
    }
    // Flood damping: at most one forwarded resize per interval; the latest size always goes out.
    this.pendingResize = info;
    if (this.lineWaiting) return; // it would redraw a dropped line; sent when the line is settled
    const interval = this.session.options.listener.resize_interval_ms;
    const wait = this.lastResizeAt + interval - Date.now();
    if (wait <= 0 && !this.resizeTimer) return this.flushResize();
    this.coalesced++;
    this.resizeTimer ??= setTimeout(() => this.flushResize(), Math.max(0, wait));
  }

  private flushResize(): void {
    this.resizeTimer = undefined;
    const r = this.pendingResize;
    if (!r || !this.upstream || this.closed || this.lineWaiting) return;
    this.pendingResize = undefined;
    this.lastResizeAt = Date.now();
    const coalesced = this.coalesced > 0 ? Math.max(0, this.coalesced - 1) : 0;
    this.coalesced = 0;
    this.upstream.setWindow(r.rows, r.cols, r.height, r.width);
    this.request('c2s', 'window-change', true, { cols: r.cols, rows: r.rows, width_px: r.width, height_px: r.height, ...(coalesced > 0 ? { coalesced } : {}) });
  }

  private onSignal(accept: (() => void) | undefined, reject: (() => void) | undefined, name: string): void {
    const signal = clip(String(name).replace(/^SIG/, ''), 64);
    if (!this.upstream || !/^[A-Z0-9]+$/.test(signal)) return this.invalid('signal', 'signal before the command started, or not a signal name', reject);
    accept?.();
    if (this.lineWaiting) this.pendingSignals.push(signal);
    else this.sendSignal(signal);
  }

  private sendSignal(signal: string): void {
    if (!this.upstream || this.closed) return;
    this.upstream.signal(signal);
    this.request('c2s', 'signal', true, { signal });
  }

  /**
   * x11-req / auth-agent-req: refused unless a policy rule allows the kind; allowed ones are held
   * and sent with the shell/exec open (the target then opens x11 / agent channels: forwarding.ts).
   */
  private onForwardingRequest(request: string, kind: 'x11' | 'agent', accept: (() => void) | undefined, reject: (() => void) | undefined, info?: { single?: boolean; protocol?: string; cookie?: Buffer | string; screen?: number }): void {
    if (this.started) return this.invalid(request, 'forwarding must be asked for before the shell or command starts', reject);
    const verdict = this.session.forwarding.judge(kind, '');
    if (!verdict.allowed) {
      reject?.();
      return this.request('c2s', request, false, { code: 'GW_ERR_SSH_FORWARDING_REFUSED', reason: verdict.message, rule_id: verdict.rule_id });
    }
    if (kind === 'agent' && !this.agentForward) {
      this.agentForward = true;
      this.session.forwarding.agentChannels++;
    }
    // The cookie is the client's fake one (its ssh swaps it for the real one); it is not recorded.
    if (kind === 'x11' && info) this.x11 = { single: !!info.single, screen: info.screen ?? 0, protocol: String(info.protocol ?? 'MIT-MAGIC-COOKIE-1'), cookie: Buffer.isBuffer(info.cookie) ? info.cookie.toString('latin1') : String(info.cookie ?? '') };
    accept?.();
    this.request('c2s', request, true, { rule_id: verdict.rule_id });
  }

  private onStart(what: 'shell' | 'exec' | 'subsystem', accept: () => ServerChannel, reject: (() => void) | undefined, arg = ''): void {
    if (this.started) return this.invalid(what, 'the channel already runs a shell, command or subsystem', reject);
    this.started = true;
    const s = this.session;
    const fields: RequestFields = what === 'exec' ? { command: arg } : what === 'subsystem' ? { subsystem: clip(arg, 256) } : {};
    let kind: SshChannelKind = what;
    if (what === 'exec' && scpMode(arg)) kind = 'scp';
    if (what === 'subsystem') kind = arg === 'sftp' ? 'sftp' : 'subsystem';
    this.kind = kind;
    const policy = s.policy();

    if (what === 'subsystem' && arg !== 'sftp') {
      reject?.();
      return this.request('c2s', what, false, { ...fields, code: 'GW_ERR_SSH_SUBSYSTEM_REFUSED', reason: `subsystem "${clip(arg, 64)}" is not supported by the gateway` });
    }
    if (policy) {
      const ctx = commandContext(kind, what === 'exec' ? arg : what === 'subsystem' ? arg : '');
      if (what === 'exec') {
        const verdict = judgeCommand(policy, s.identityForPolicy(), s.target.id, ctx);
        const d = verdict.decision;
        if (d.action === 'require_approval' && d.approval !== undefined && (this.holds ??= s.holds()) !== undefined) {
          return void this.holdExec(accept, reject, arg, d.rule_id ?? '(default)', d.approval, fields);
        }
        if (d.action !== 'allow') return this.blockExec(accept, arg, verdict.message, d.rule_id, d.action, d.reason, fields);
      } else {
        const verdict = judgeChannel(policy, s.identityForPolicy(), s.target.id, ctx, false);
        if (!verdict.allowed) {
          reject?.();
          return this.request('c2s', what, false, { ...fields, code: 'GW_ERR_SSH_SUBSYSTEM_REFUSED', reason: verdict.message, rule_id: verdict.rule_id });
        }
      }
    }

    this.open(what, kind, arg, accept, reject, fields, !!policy);
  }

  /** Open the twin channel on the target and wire both (after the policy allowed it, or approvers did). */
  private open(what: 'shell' | 'exec' | 'subsystem', kind: SshChannelKind, arg: string, accept: () => ServerChannel, reject: (() => void) | undefined, fields: RequestFields, policed: boolean): void {
    const s = this.session;
    const conn = s.upstreamConnection();
    const env = this.envCount > 0 ? { ...this.env } : undefined;
    const pty = this.pty ? { term: this.pty.term, rows: this.pty.rows, cols: this.pty.cols, width: this.pty.width, height: this.pty.height, modes: this.pty.modes } : undefined;
    const opened = (err: Error | undefined, up: ClientChannel): void => {
      if (this.closed) {
        up?.close();
        return;
      }
      if (err) {
        reject?.();
        this.request('c2s', what, false, { ...fields, code: 'GW_ERR_SSH_CHANNEL_FAILED', reason: `the target refused: ${clip(err.message, 200)}` });
        return;
      }
      this.upstream = up;
      const client = accept();
      this.client = client;
      this.request('c2s', what, true, fields);
      if (kind === 'shell' && policed) this.editor = new LineEditor(undefined, !this.pty);
      if (kind === 'sftp') this.sftp = new SftpObserver((op) => this.fileOp('sftp', op));
      if (kind === 'scp') this.scp = new ScpObserver(scpMode(arg)!, arg, (op) => this.fileOp('scp', op));
      this.wire(client, up);
      if (this.pendingResize) this.flushResize();
    };
    try {
      const fwd = { ...(this.agentForward ? { agentForward: true } : {}), ...(this.x11 ? { x11: this.x11 } : {}) };
      if (what === 'shell') conn.shell(pty ?? false, { ...(env ? { env } : {}), ...fwd }, opened);
      else if (what === 'exec') conn.exec(arg, { ...(env ? { env } : {}), ...(pty ? { pty } : {}), ...fwd }, opened);
      else conn.subsys(arg, opened);
    } catch (err) {
      opened(err as Error, undefined as unknown as ClientChannel);
    }
  }

  /**
   * An exec that needs approval: the client's channel opens at once and is told on stderr that the
   * command waits (with the approval id); approved → the command starts on the target; otherwise
   * the reason goes to stderr and the channel exits 126, as for a block. Nothing reaches the target
   * while it waits.
   */
  private async holdExec(accept: () => ServerChannel, reject: (() => void) | undefined, command: string, rule_id: string, approval: ApprovalAction, fields: RequestFields): Promise<void> {
    const s = this.session;
    const client = accept();
    this.client = client;
    client.on('error', () => {});
    const ask = { rule_id, approval, protocol_kind: 'command' as const, statement: command, features: [], relations: [] };
    const r = await this.holds!.wait(ask, (id, timeout_s) =>
      this.notice(`vigil: this command needs approval under policy rule "${rule_id}" (approval ${id}); waiting up to ${timeout_s} s for a decision\r\n`, true),
    );
    if (this.closed) return;
    if (r.outcome === 'approved') return this.open('exec', 'exec', command, () => client, reject, fields, true);
    const message = notApprovedMessage(r, ask, r.approval_id, 'command');
    this.request('c2s', 'exec', false, { ...fields, code: 'GW_ERR_APPROVAL_DENIED', reason: message, rule_id });
    this.notice(`vigil: ${message}\r\n`, true);
    this.request('s2c', 'exit-status', true, { exit_status: BLOCKED_EXIT_STATUS });
    client.exit(BLOCKED_EXIT_STATUS);
    client.end();
  }

  /** Text the gateway itself writes to the client (recorded as a VIGIL_NOTICE frame). */
  private notice(text: string, stderr = false): void {
    const b = Buffer.from(text);
    this.session.recorder.frame('s2c', `VIGIL_NOTICE/${this.n}`, b);
    if (stderr) this.client?.stderr.write(b);
    else this.client?.write(b);
  }

  /** An exec the policy refused: the channel opens, says why on stderr, and exits 126. */
  private blockExec(accept: () => ServerChannel, command: string, message: string, rule_id: string | null, action: string, reason: 'rule' | 'default' | 'unparsable', fields: RequestFields): void {
    const s = this.session;
    const client = accept();
    this.client = client;
    client.on('error', () => {});
    client.resume();
    this.request('c2s', 'exec', false, { ...fields, code: 'GW_ERR_POLICY_BLOCKED', reason: message, rule_id });
    s.blocked({ channel: this.n, protocol_kind: 'ssh_exec', statement: command, message, rule_id, action, reason });
    const notice = Buffer.from(`vigil: ${message}\r\n`);
    s.recorder.frame('s2c', `VIGIL_NOTICE/${this.n}`, notice);
    client.stderr.write(notice);
    this.request('s2c', 'exit-status', true, { exit_status: BLOCKED_EXIT_STATUS });
    client.exit(BLOCKED_EXIT_STATUS);
    client.end();
  }

  private wire(client: ServerChannel, up: ClientChannel): void {
    const s = this.session;
    client.on('error', () => {});
    up.on('error', () => {});
    up.stderr.on('error', () => {});
    client.on('data', (d: Buffer) => {
      s.recorder.frame('c2s', this.dataType, d);
      if (this.sftp) this.sftp.push('c2s', d);
      if (this.scp) this.scp.push('c2s', d);
      if (this.editor) this.forwardEdited(d, up);
      else if (!up.write(d)) this.hold(client, up);
    });
    up.on('data', (d: Buffer) => {
      s.recorder.frame('s2c', this.dataType, d);
      this.promptWatch?.output(d);
      if (this.sftp) this.sftp.push('s2c', d);
      if (this.scp) this.scp.push('s2c', d);
      if (!client.write(d)) this.hold(up, client);
    });
    up.stderr.on('data', (d: Buffer) => {
      s.recorder.frame('s2c', this.errType, d);
      if (!client.stderr.write(d)) {
        up.stderr.pause();
        client.stderr.once('drain', () => up.stderr.resume());
      }
    });
    up.on('exit', (code: number | null, signal?: string, dump?: boolean, desc?: string) => {
      if (typeof code === 'number') {
        this.request('s2c', 'exit-status', true, { exit_status: code });
        this.exitArgs = [code];
      } else if (signal) {
        const name = String(signal).replace(/^SIG/, '');
        this.request('s2c', 'exit-signal', true, { signal: clip(name, 64) });
        this.exitArgs = [name, !!dump, desc ?? ''];
      }
    });
    // Client EOF → target EOF (the command sees end of input), and the reverse.
    client.on('end', () => {
      this.request('c2s', 'eof', true);
      // Input still waiting behind a line goes first; the EOF follows it (resumeLines).
      if (this.lineWaiting) this.eofPending = true;
      else this.endInput(up);
    });
    up.on('close', () => this.close('target'));
  }

  private exitArgs: [number] | [string, boolean, string] | undefined;

  /** Wait for `from` to drain `to` (both directions use this). */
  private hold(from: { pause(): unknown; resume(): unknown }, to: { once(e: 'drain', f: () => void): unknown }): void {
    from.pause();
    // The client stays paused while a line waits (resumeLines resumes it); the target never does.
    to.once('drain', () => (from === this.client && this.lineWaiting) || from.resume());
  }

  /** Shell input with a policy: forward up to each Enter, judge the line, pass or withhold the Enter. */
  private forwardEdited(d: Buffer, up: ClientChannel): void {
    if (this.closed) return;
    if (this.lineWaiting) {
      this.pendingInput.push(d); // typed while a line waits: judged after it, in order
      return;
    }
    const lines = this.editor!.push(d);
    if (this.pty) return this.forwardLines(d, lines, 0, 0, up);
    // No terminal: nothing echoes or edits, and the shell reads whole lines, so only whole, judged
    // lines go on (a blocked one is simply never sent); the bytes after the last one wait.
    const held = this.rawTail.length;
    const all = held > 0 ? Buffer.concat([this.rawTail, d]) : d;
    const shifted = lines.map((l) => ({ ...l, enter: l.enter + held, end: l.end + held }));
    const cut = shifted.length > 0 ? shifted[shifted.length - 1]!.end : 0;
    this.rawTail = Buffer.from(all.subarray(cut));
    if (this.rawTail.length > this.editor!.maxLine + 4096) {
      // The line will be blocked as too long to judge anyway; its bytes are not kept meanwhile.
      const start = this.rawTail.subarray(0, 1024).toString('utf8');
      this.rawTail = Buffer.alloc(0);
      return this.lineTooLong(start);
    }
    if (cut > 0) this.forwardLines(all.subarray(0, cut), shifted, 0, 0, up);
  }

  /** The client's EOF, once no line waits: an unterminated last line (no terminal) is judged first. */
  private endInput(up: ClientChannel): void {
    this.eofPending = false;
    if (this.rawTail.length > 0 && !this.closed) {
      // A shell runs an unterminated last line at EOF: it is judged as a line.
      const lf = Buffer.from('\n');
      this.session.recorder.frame('c2s', `VIGIL_INJECT/${this.n}`, lf);
      this.forwardEdited(lf, up);
      if (this.lineWaiting) return void (this.eofPending = true);
    }
    if (!this.closed) up.end();
  }

  /**
   * A line longer than the editor keeps cannot be judged: the shell is closed (fail closed). The
   * refusal records the line's first 1 KiB (`start`), enough for an auditor to see what it was.
   */
  private lineTooLong(start: string): void {
    const max = this.editor!.maxLine;
    this.session.blocked({ channel: this.n, protocol_kind: 'ssh_shell', statement: start, message: `a line longer than ${max} characters cannot be judged`, rule_id: null, action: 'block', reason: 'unparsable' });
    this.notice(`\r\nvigil: a line longer than ${max} characters cannot be judged; closing this shell\r\n`);
    this.close('policy', { code: 'GW_ERR_SSH_LINE_TOO_LONG', reason: `a shell line longer than ${max} characters` });
  }

  /** Lines `from…` of chunk `d` (bytes before `pos` already handled); stops at a line that waits for approval. */
  private forwardLines(d: Buffer, lines: ReturnType<LineEditor['push']>, from: number, pos: number, up: ClientChannel): void {
    const s = this.session;
    let ok = true;
    for (let i = from; i < lines.length; i++) {
      const ev = lines[i]!;
      // With a terminal the line's keys already went to the shell (it echoes them) and only the
      // Enter is withheld; without one, the whole line is.
      const start = this.pty ? ev.enter : i > 0 ? lines[i - 1]!.end : 0;
      if (ev.truncated) {
        if (start > pos) up.write(d.subarray(pos, start));
        return this.lineTooLong(ev.line.slice(0, 1024));
      }
      // A line ending in a backslash goes on in the next (bash shows its PS2): what runs is the
      // joined text, so that is what is judged, at each Enter.
      const joined = (this.continued ?? '') + ev.line;
      const open = this.pty && continuesLine(ev.line);
      const text = open ? joined.slice(0, -1) : joined;
      this.continued = undefined;
      if (text.trim() === '') {
        if (open) this.continued = text;
        continue;
      }
      const verdict = judgeCommand(s.policy()!, s.identityForPolicy(), s.target.id, commandContext('shell', text));
      const dec = verdict.decision;
      if (dec.action === 'allow') {
        if (open) this.continued = text;
        continue;
      }
      if (start > pos) ok = up.write(d.subarray(pos, start)) && ok;
      if (dec.action === 'require_approval' && dec.approval !== undefined && (this.holds ??= s.holds()) !== undefined) {
        // The Enter waits; so does everything typed after it.
        this.lineWaiting = true;
        this.client?.pause();
        const ask = { rule_id: dec.rule_id ?? '(default)', approval: dec.approval, protocol_kind: 'command' as const, statement: text, features: [], relations: [] };
        void this.holds
          .wait(ask, (id, timeout_s) => this.notice(`\r\nvigil: this command needs approval under policy rule "${ask.rule_id}" (approval ${id}); waiting up to ${timeout_s} s for a decision\r\n`))
          .then((r) => {
            if (this.closed) return;
            if (r.outcome !== 'approved') return this.dropLine(text, notApprovedMessage(r, ask, r.approval_id, 'command'), up, d, lines, i + 1, ev.end);
            if (open) this.continued = text;
            up.write(d.subarray(start, ev.end));
            this.resumeLines(d, lines, i + 1, ev.end, up);
          });
        return;
      }
      pos = ev.end;
      // The Enter never reaches the target.
      s.blocked({ channel: this.n, protocol_kind: 'ssh_shell', statement: text, message: verdict.message, rule_id: dec.rule_id, action: dec.action, reason: dec.reason });
      if (!this.pty) {
        this.notice(`\r\nvigil: ${verdict.message}\r\n`);
        continue;
      }
      if (!ok && this.client) this.hold(this.client, up);
      this.dropLine(text, verdict.message, up, d, lines, i + 1, pos);
      return;
    }
    if (pos < d.length) ok = up.write(pos === 0 ? d : d.subarray(pos)) && ok;
    if (!ok && this.client) this.hold(this.client, up);
  }

  /** Go on with lines `from…` of chunk `d` (bytes before `pos` handled), then with input held meanwhile. */
  private resumeLines(d: Buffer, lines: ReturnType<LineEditor['push']>, from: number, pos: number, up: ClientChannel): void {
    this.lineWaiting = false;
    for (const signal of this.pendingSignals.splice(0)) this.sendSignal(signal);
    if (this.pendingResize && !this.resizeTimer) this.flushResize();
    this.client?.resume();
    this.forwardLines(d, lines, from, pos, up);
    while (!this.lineWaiting && this.pendingInput.length > 0) this.forwardEdited(this.pendingInput.shift()!, up);
    if (this.eofPending && !this.lineWaiting) this.endInput(up);
  }

  /**
   * A line that does not run: Ctrl-C makes a readline shell drop it and print a fresh prompt; the
   * notice says why. Everything typed after it waits until PromptWatch has seen that prompt, then
   * lines `from…` of `d` go on. A shell without a terminal was never sent the line: nothing to drop.
   */
  private dropLine(line: string, message: string, up: ClientChannel, d: Buffer, lines: ReturnType<LineEditor['push']>, from: number, pos: number): void {
    this.notice(`\r\nvigil: ${message}\r\n`);
    this.continued = undefined; // Ctrl-C abandons a command continued over several lines too
    if (!this.pty) return this.resumeLines(d, lines, from, pos, up); // the line was never sent
    this.lineWaiting = true;
    this.client?.pause();
    this.promptWatch = new PromptWatch(line, {
      interrupt: () => {
        const b = Buffer.from([0x03]);
        this.session.recorder.frame('c2s', `VIGIL_INJECT/${this.n}`, b);
        up.write(b);
      },
      ready: () => {
        this.promptWatch = undefined;
        this.resumeLines(d, lines, from, pos, up);
      },
      failed: () => this.lineNotDiscarded('no fresh prompt after Ctrl-C'),
    });
  }

  /** Fail closed: the shell may still hold a blocked line, and the next Enter would run it. */
  private lineNotDiscarded(why: string): void {
    this.notice(`\r\nvigil: the shell did not discard the blocked line (${why}); closing this shell\r\n`);
    this.close('policy', { code: 'GW_ERR_SSH_LINE_NOT_DISCARDED', reason: `the shell did not discard a blocked line (${why})` });
  }

  private fileOp(protocol: 'sftp' | 'scp', op: FileOp): void {
    this.session.event({ type: 'ssh.file', version: 1, channel: this.n, protocol, ...op });
  }

  /** End both sides once; exit status/signal goes to the client after all data it precedes. */
  close(by: 'client' | 'target' | 'session' | 'policy', why?: { code: GatewayErrorCode; reason: string }): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.resizeTimer);
    this.promptWatch?.cancel();
    this.holds?.settle('closed');
    if (this.agentForward) this.session.forwarding.agentChannels--;
    this.sftp?.finish();
    const client = this.client;
    const exit = this.exitArgs;
    if (client && by !== 'client') {
      // An empty write completes after every queued chunk: exit-status then EOF/close follow the data.
      client.write(Buffer.alloc(0), () => {
        try {
          if (exit) (client.exit as (...a: unknown[]) => void)(...exit);
        } catch {
          /* channel already gone */
        }
        client.end();
      });
    } else if (!client && by !== 'client') {
      this.session.closeUnstarted(this.raw);
    }
    if (this.upstream && by !== 'target') this.upstream.close();
    this.session.event({ type: 'ssh.channel', version: 1, channel: this.n, action: 'closed', kind: 'session', ...why });
    this.session.channelClosed(this);
  }
}

function validSize(cols: number, rows: number): boolean {
  return Number.isInteger(cols) && Number.isInteger(rows) && cols >= 0 && rows >= 0 && cols <= MAX_TERM_DIM && rows <= MAX_TERM_DIM;
}
