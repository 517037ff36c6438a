/**
 * SSH events, emitted by the gateway in the session's chain next to the `frame` events that carry
 * channel data. Channel numbers are the gateway's own per-session counter (0, 1, …), the same in
 * every event of a session; frames name theirs in `msg_type` (`SSH_MSG_CHANNEL_DATA/<n>`).
 *
 * Names follow RFC 4254 (channel types, request types) so a reader can look them up.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BaseFields } from '../envelope.ts';

/**
 * `ssh.channel` v1: a channel opened, refused or closed. Forwarding requests (RFC 4254 §7) are
 * recorded here too, with `kind` the request name, since they open channels or ask for them.
 */
export const SshChannel = Type.Object(
  {
    type: Type.Literal('ssh.channel'),
    version: Type.Literal(1),
    ...BaseFields,
    /** Gateway channel number; absent for a refused global request (tcpip-forward). */
    channel: Type.Optional(Type.Integer({ minimum: 0 })),
    action: Type.Union([Type.Literal('open'), Type.Literal('refused'), Type.Literal('closed')]),
    /** session | direct-tcpip | direct-streamlocal@openssh.com | x11 | auth-agent@openssh.com | tcpip-forward | … */
    kind: Type.String({ maxLength: 128 }),
    /** Forwarding destination or bind address, as the client asked for it. */
    host: Type.Optional(Type.String({ maxLength: 1024 })),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    /** For refusals, and for a channel the gateway closed: a stable code (GW_ERR_SSH_*) and a reason safe to show. */
    code: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String()),
    /** The deciding policy rule, when a policy decided. */
    rule_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  },
  { additionalProperties: false, $id: 'vigil.ssh.channel.v1' },
);
export type SshChannel = Static<typeof SshChannel>;

/**
 * `ssh.request` v1: a channel request (RFC 4254 §6) from either side, and whether the gateway
 * passed it on. Resizes (`window-change`), `exit-status` and `exit-signal` are the ones a replay needs.
 */
export const SshRequest = Type.Object(
  {
    type: Type.Literal('ssh.request'),
    version: Type.Literal(1),
    ...BaseFields,
    channel: Type.Integer({ minimum: 0 }),
    /** c2s: the client asked; s2c: the target told (exit-status, exit-signal, eof). */
    direction: Type.Union([Type.Literal('c2s'), Type.Literal('s2c')]),
    /** pty-req | window-change | env | shell | exec | subsystem | signal | x11-req | auth-agent-req@openssh.com | exit-status | exit-signal | eof | … */
    request: Type.String({ maxLength: 128 }),
    /** false: refused (by the gateway or the target). */
    accepted: Type.Boolean(),
    /** pty-req: TERM; window-change/pty-req: size in characters and pixels. */
    term: Type.Optional(Type.String({ maxLength: 256 })),
    cols: Type.Optional(Type.Integer({ minimum: 0 })),
    rows: Type.Optional(Type.Integer({ minimum: 0 })),
    width_px: Type.Optional(Type.Integer({ minimum: 0 })),
    height_px: Type.Optional(Type.Integer({ minimum: 0 })),
    /** env: variable name and value (values clipped); the value of a name that looks secret is not recorded. */
    name: Type.Optional(Type.String({ maxLength: 1024 })),
    value: Type.Optional(Type.String({ maxLength: 4096 })),
    /** exec: the command line exactly as sent. */
    command: Type.Optional(Type.String()),
    /** subsystem name (sftp, …). */
    subsystem: Type.Optional(Type.String({ maxLength: 256 })),
    /** signal (without SIG) for signal and exit-signal. */
    signal: Type.Optional(Type.String({ maxLength: 64 })),
    exit_status: Type.Optional(Type.Integer()),
    /** Refusal code (GW_ERR_SSH_*) and reason. */
    code: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String()),
    rule_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    /** window-change: resizes received but not forwarded since the last recorded one (flood damping). */
    coalesced: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false, $id: 'vigil.ssh.request.v1' },
);
export type SshRequest = Static<typeof SshRequest>;

/**
 * `ssh.file` v1: a file operation seen in an allowed SFTP or SCP channel. Emitted when the handle is
 * closed (sizes are then known) or when the operation completes (remove, rename, mkdir, …).
 */
export const SshFile = Type.Object(
  {
    type: Type.Literal('ssh.file'),
    version: Type.Literal(1),
    ...BaseFields,
    channel: Type.Integer({ minimum: 0 }),
    protocol: Type.Union([Type.Literal('sftp'), Type.Literal('scp')]),
    /** open (read/write), remove, rename, mkdir, rmdir, setstat, symlink, … */
    op: Type.String({ maxLength: 64 }),
    path: Type.String(),
    /** rename/symlink target. */
    target_path: Type.Optional(Type.String()),
    /** upload: client → target; download: target → client; none: metadata only. */
    direction: Type.Union([Type.Literal('upload'), Type.Literal('download'), Type.Literal('none')]),
    /** Bytes read or written through this handle (SFTP), or the file size announced (SCP). */
    bytes: Type.Integer({ minimum: 0 }),
    /** SFTP status of the operation when known (0 = SSH_FX_OK). */
    status: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false, $id: 'vigil.ssh.file.v1' },
);
export type SshFile = Static<typeof SshFile>;
