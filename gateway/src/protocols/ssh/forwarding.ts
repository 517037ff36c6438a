/**
 * Forwarding through the gateway (RFC 4254 §7, §6.3.2; OpenSSH PROTOCOL §2.1 for the agent): all of
 * it refused unless a policy `allow` rule names its channel kind, and when allowed relayed like any
 * channel (frames both ways, `ssh.channel` open/closed events).
 *
 * - `direct-tcpip` (ssh -L): the client opens a channel, the gateway opens its twin on the target.
 * - `tcpip-forward` (ssh -R): the client's global request becomes the gateway's request to the
 *   target (which listens); each `forwarded-tcpip` channel the target opens is opened toward the
 *   client with the same addresses.
 * - agent (ssh -A): the `auth-agent-req@openssh.com` of an allowed session channel is passed to
 *   the target; each `auth-agent@openssh.com` channel the target opens is opened toward the client
 *   (the client's agent answers). The gateway is an ssh2 client whose `agent` is AgentBridge.
 * - X11 (ssh -X): the `x11-req` (with the client's cookie, which the client swaps for the real
 *   one) goes to the target; each `x11` channel the target opens is opened toward the client.
 *
 * Direction in frames: c2s is what the caller's side sent (its program, agent or X server), s2c
 * what came from the target's side, whichever side opened the channel.
 */
import { Duplex } from 'node:stream';
import ssh2, { type Connection, type TcpipRequestInfo, type TcpConnectionDetails, type X11Details } from 'ssh2';
import type { SshChannelKind } from '../../policy/schema.ts';
import { commandContext, judgeChannel } from './commands.ts';
import type { SshSession } from './ssh-session.ts';

/** Window and packet size ssh2 uses for the channels it opens (lib/Channel.js). */
const MAX_WINDOW = 2 * 1024 * 1024;
const PACKET_SIZE = 32 * 1024;

type Stream = Duplex & { close?(): void };

export interface Verdict {
  allowed: boolean;
  rule_id: string | null;
  message: string;
}

export class Forwarding {
  /** Forwarded channels open now (they count toward max_channels_per_session). */
  open = 0;
  /** Active remote forwardings (`addr:port` as the target bound it). */
  private readonly listeners = new Map<string, { bindAddr: string; bindPort: number }>();
  /** Session channels whose agent forwarding the policy allowed (the target may then ask for the agent). */
  agentChannels = 0;
  /** Close functions of the relays running now, so the session's end closes (and records) each one. */
  private readonly relays = new Set<(clientGone?: boolean) => void>();

  constructor(private readonly s: SshSession) {}

  judge(kind: SshChannelKind, arg: string): Verdict {
    return judgeChannel(this.s.policy(), this.s.identityForPolicy(), this.s.target.id, commandContext(kind, arg), true);
  }

  private refused(kind: string, where: { host?: string; port?: number }, code: string, reason: string, rule_id: string | null = null, channel?: number): void {
    this.s.event({ type: 'ssh.channel', version: 1, ...(channel !== undefined ? { channel } : {}), action: 'refused', kind, ...where, code, reason, rule_id });
  }

  // ---- ssh -L --------------------------------------------------------------------------------

  onDirectTcpip(accept: () => ssh2.ServerChannel, reject: () => void, info: TcpipRequestInfo): void {
    const where = { host: String(info.destIP).slice(0, 1024), port: info.destPort };
    const verdict = this.judge('direct-tcpip', `${info.destIP}:${info.destPort}`);
    if (!verdict.allowed) {
      reject();
      return this.refused('direct-tcpip', where, 'GW_ERR_SSH_FORWARDING_REFUSED', verdict.message, verdict.rule_id);
    }
    if (!this.s.channelSlot('direct-tcpip')) return reject();
    const n = this.s.allocChannel();
    this.open++;
    this.s.upstreamConnection().forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, up) => {
      if (err || !this.s.isOpen()) {
        this.open--;
        reject();
        return this.refused('direct-tcpip', where, 'GW_ERR_SSH_CHANNEL_FAILED', 'the target refused the forwarding', null, n);
      }
      this.relay(n, 'direct-tcpip', accept(), up, where, verdict.rule_id);
    });
  }

  // ---- ssh -R --------------------------------------------------------------------------------

  /** Global requests: tcpip-forward / cancel-tcpip-forward relayed when allowed; stream-local refused. */
  onGlobalRequest(accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, name: string, info: { bindAddr?: string; bindPort?: number; socketPath?: string } | undefined): void {
    const where = { ...(info?.bindAddr !== undefined ? { host: String(info.bindAddr).slice(0, 1024) } : {}), ...(typeof info?.bindPort === 'number' ? { port: info.bindPort } : {}) };
    const kind = String(name).slice(0, 128);
    if (name === 'cancel-tcpip-forward' && info?.bindAddr !== undefined && typeof info.bindPort === 'number') {
      const key = `${info.bindAddr}:${info.bindPort}`;
      if (!this.listeners.has(key)) return reject?.();
      this.listeners.delete(key);
      this.s.upstreamConnection().unforwardIn(info.bindAddr, info.bindPort, (err) => (err ? reject?.() : accept?.()));
      this.s.event({ type: 'ssh.channel', version: 1, action: 'closed', kind: 'tcpip-forward', ...where });
      return;
    }
    if (name !== 'tcpip-forward' || info?.bindAddr === undefined || typeof info.bindPort !== 'number') {
      reject?.();
      return this.refused(kind, { ...where, ...(info?.socketPath !== undefined ? { host: String(info.socketPath).slice(0, 1024) } : {}) }, 'GW_ERR_SSH_FORWARDING_REFUSED', 'stream-local forwarding is not supported by the gateway');
    }
    const verdict = this.judge('tcpip-forward', `${info.bindAddr}:${info.bindPort}`);
    if (!verdict.allowed) {
      reject?.();
      return this.refused(kind, where, 'GW_ERR_SSH_FORWARDING_REFUSED', verdict.message, verdict.rule_id);
    }
    if (this.listeners.size >= this.s.options.listener.max_channels_per_session) {
      reject?.();
      return this.refused(kind, where, 'GW_ERR_SSH_CHANNEL_LIMIT', `the connection already holds ${this.listeners.size} remote forwardings`);
    }
    const bindAddr = info.bindAddr;
    this.s.upstreamConnection().forwardIn(bindAddr, info.bindPort, (err, port) => {
      if (err || !this.s.isOpen()) {
        reject?.();
        return this.refused(kind, where, 'GW_ERR_SSH_CHANNEL_FAILED', 'the target refused to listen');
      }
      const bound = info.bindPort === 0 && typeof port === 'number' ? port : info.bindPort!;
      this.listeners.set(`${bindAddr}:${bound}`, { bindAddr, bindPort: bound });
      accept?.(bound);
      this.s.event({ type: 'ssh.channel', version: 1, action: 'open', kind: 'tcpip-forward', host: bindAddr.slice(0, 1024), port: bound, rule_id: verdict.rule_id });
    });
  }

  /** The target accepted a connection on a remote forwarding: open `forwarded-tcpip` toward the client. */
  onTargetTcpConnection(info: TcpConnectionDetails, accept: () => ssh2.ClientChannel, reject: () => void): void {
    const where = { host: String(info.destIP).slice(0, 1024), port: info.destPort };
    if (!this.listeners.has(`${info.destIP}:${info.destPort}`)) {
      reject();
      return this.refused('forwarded-tcpip', where, 'GW_ERR_SSH_FORWARDING_REFUSED', 'no remote forwarding of this client listens there');
    }
    this.toClient('forwarded-tcpip', where, accept, reject, (cb) => this.client().forwardOut(info.destIP, info.destPort, info.srcIP, info.srcPort, cb));
  }

  // ---- ssh -X --------------------------------------------------------------------------------

  onTargetX11(info: X11Details, accept: () => ssh2.ClientChannel, reject: () => void): void {
    this.toClient('x11', { host: String(info.srcIP).slice(0, 1024), port: info.srcPort }, accept, reject, (cb) => this.client().x11(info.srcIP, info.srcPort, cb));
  }

  // ---- ssh -A --------------------------------------------------------------------------------

  /**
   * The target opened `auth-agent@openssh.com` (ssh2 calls AgentBridge.getStream): open the same
   * toward the client and hand ssh2 a stream that relays to it, recording both ways.
   */
  agentStream(cb: (err: Error | undefined, stream?: Duplex) => void): void {
    if (this.agentChannels === 0 || !this.s.isOpen()) {
      this.refused('auth-agent@openssh.com', {}, 'GW_ERR_SSH_FORWARDING_REFUSED', 'no session channel of this connection has agent forwarding');
      return cb(new Error('agent forwarding not allowed'));
    }
    if (!this.s.channelSlot('auth-agent@openssh.com')) return cb(new Error('channel limit'));
    const n = this.s.allocChannel();
    this.open++;
    openAgentChannel(this.client(), (err, down) => {
      if (err || !down || !this.s.isOpen()) {
        // Confirmed after the session ended: closeAll has run, so this one is refused, not relayed.
        if (down && !err) {
          try {
            down.close ? down.close() : down.destroy();
          } catch {
            /* connection already gone */
          }
        }
        this.open--;
        this.refused('auth-agent@openssh.com', {}, 'GW_ERR_SSH_CHANNEL_FAILED', 'the client refused the agent channel', null, n);
        return cb(err ?? new Error('agent channel refused'));
      }
      // ssh2 pipes the target's channel into `forSsh2` and back; the relay works on its twin.
      const [forSsh2, twin] = duplexPair();
      this.relay(n, 'auth-agent@openssh.com', down, twin, {}, null);
      cb(undefined, forSsh2);
    });
  }

  // ---- shared --------------------------------------------------------------------------------

  /** A channel the target opened: open its twin toward the client, then relay. */
  private toClient(kind: string, where: { host?: string; port?: number }, accept: () => ssh2.ClientChannel, reject: () => void, open: (cb: (err: Error | undefined, ch: ssh2.ServerChannel) => void) => void): void {
    if (!this.s.isOpen() || !this.s.channelSlot(kind)) return reject();
    const n = this.s.allocChannel();
    this.open++;
    open((err, down) => {
      if (err || !this.s.isOpen()) {
        this.open--;
        reject();
        return this.refused(kind, where, 'GW_ERR_SSH_CHANNEL_FAILED', 'the client refused the channel', null, n);
      }
      this.relay(n, kind, down, accept(), where, null);
    });
  }

  /**
   * The session is ending: close every forwarded channel still open and record its `closed` event
   * now. Their own close callbacks may come after `session.ended`, when the chain takes no more.
   */
  closeAll(clientGone: boolean): void {
    for (const close of [...this.relays]) close(clientGone);
    // Remote forwardings end with the session (the target's listeners go with its connection).
    for (const [key, l] of this.listeners) {
      this.listeners.delete(key);
      this.s.event({ type: 'ssh.channel', version: 1, action: 'closed', kind: 'tcpip-forward', host: l.bindAddr.slice(0, 1024), port: l.bindPort });
    }
  }

  private client(): Connection {
    return this.s.clientConnection();
  }

  /**
   * Relay one forwarded channel: `down` faces the client (its bytes are c2s), `up` the target. Each
   * chunk is recorded before it is forwarded; backpressure both ways; one closed event.
   */
  relay(n: number, kind: string, down: Stream, up: Stream, where: { host?: string; port?: number }, rule_id: string | null): void {
    const s = this.s;
    const type = `SSH_MSG_CHANNEL_DATA/${n}`;
    s.event({ type: 'ssh.channel', version: 1, channel: n, action: 'open', kind, ...where, rule_id });
    down.on('error', () => {});
    up.on('error', () => {});
    // An end is not passed on once the relay is closed: the side it would go to may be a channel of
    // a connection ssh2 has torn down, whose deferred close then throws (see close()).
    let closed = false;
    const pipe = (from: Stream, to: Stream, direction: 'c2s' | 's2c'): void => {
      from.on('data', (d: Buffer) => {
        s.recorder.frame(direction, type, d);
        if (!to.write(d)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => closed || to.end());
    };
    pipe(down, up, 'c2s');
    pipe(up, down, 's2c');
    const close = (clientGone = false): void => {
      if (closed) return;
      closed = true;
      this.open--;
      this.relays.delete(close);
      s.event({ type: 'ssh.channel', version: 1, channel: n, action: 'closed', kind });
      // Once the client's connection is gone, ssh2 has torn down its protocol state and closing a
      // channel of it throws (compressed connections: "Invalid Zlib instance"): the side facing
      // the client is left alone then.
      for (const ch of clientGone ? [up] : [down, up]) ch.close ? ch.close() : ch.destroy();
    };
    this.relays.add(close);
    down.on('close', () => close());
    up.on('close', () => close());
  }
}

/**
 * Two connected Duplex streams: what is written to one is read from the other, with backpressure
 * (a write completes once the other side's reader wants more). Node 20 has no stream.duplexPair.
 */
function duplexPair(): [Duplex, Duplex] {
  let waitA: (() => void) | undefined; // a write into `a`'s readable side waits for a's reader
  let waitB: (() => void) | undefined;
  const a: Duplex = new Duplex({
    write: (chunk: Buffer, _e, done) => (b.push(chunk) ? done() : (waitB = done)),
    final: (done) => (b.push(null), done()),
    read: () => {
      const w = waitA;
      waitA = undefined;
      w?.();
    },
  });
  const b: Duplex = new Duplex({
    write: (chunk: Buffer, _e, done) => (a.push(chunk) ? done() : (waitA = done)),
    final: (done) => (a.push(null), done()),
    read: () => {
      const w = waitB;
      waitB = undefined;
      w?.();
    },
  });
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
  return [a, b];
}

/**
 * Open `auth-agent@openssh.com` toward the client. ssh2's server opens only forwarded-tcpip, x11
 * and stream-local channels (Connection#forwardOut/x11); its protocol layer has the agent channel,
 * so this does what its private openChannel() does, in this one guarded place.
 */
function openAgentChannel(client: Connection, cb: (err: Error | undefined, ch?: ssh2.ServerChannel) => void): void {
  const c = client as unknown as { _chanMgr?: { add(w: unknown): number }; _protocol?: { openssh_authAgent(id: number, win: number, pkt: number): void } };
  if (!c._chanMgr || !c._protocol) return cb(new Error('connection gone'));
  const wrapper = Object.assign((err: Error | undefined, ch: ssh2.ServerChannel) => cb(err, ch), { type: 'auth-agent@openssh.com' });
  const id = c._chanMgr.add(wrapper);
  if (id === -1) return cb(new Error('no free channels'));
  c._protocol.openssh_authAgent(id, MAX_WINDOW, PACKET_SIZE);
}

/**
 * The gateway's ssh2 client `agent`: it never signs (the gateway logs in with the target's own
 * credentials) and serves only agent forwarding, by relaying to the caller's agent.
 */
export class AgentBridge extends ssh2.BaseAgent {
  constructor(private readonly forwarding: () => Forwarding | undefined) {
    super();
  }
  override getIdentities(cb: (err: Error | undefined, keys?: ssh2.ParsedKey[]) => void): void {
    cb(undefined, []);
  }
  override sign(_pub: ssh2.ParsedKey, _data: Buffer, options: unknown, cb?: (err?: Error) => void): void {
    (typeof options === 'function' ? (options as (err?: Error) => void) : cb!)(new Error('the gateway agent does not sign'));
  }
  override getStream(cb: (err: Error | undefined, stream?: Duplex) => void): void {
    const f = this.forwarding();
    if (!f) return cb(new Error('no session'));
    f.agentStream(cb);
  }
}
