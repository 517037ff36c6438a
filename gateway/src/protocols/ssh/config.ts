/**
 * SSH configuration schemas: the `gateway.ssh` listener section and the `protocol: ssh` target.
 * gateway/src/config.ts validates them with the rest of the gateway config (same rules: defaults in
 * the schema, unknown keys refused, every problem at once, frozen).
 */
import { Type, type Static } from '@sinclair/typebox';
import { SecretRef } from '../../secrets.ts';
import { PublicKeyEntrySchema } from './public-keys.ts';

export const SshListenerSchema = Type.Object(
  {
    listen_host: Type.String({ minLength: 1, default: '127.0.0.1' }),
    /** 0 picks a free port (tests); the bound port is reported by startGateway. */
    listen_port: Type.Integer({ minimum: 0, maximum: 65535, default: 12222 }),
    /**
     * The gateway's own host key (OpenSSH private key). Created (ed25519, mode 0600) when missing, so
     * clients see the same key across restarts. `vigil` fills `<data_dir>/ssh/host_key` when unset.
     */
    host_key_file: Type.String({ minLength: 1 }),
    /** Connections held at once, authenticated or not; more are disconnected (TOO_MANY_CONNECTIONS). */
    max_sessions: Type.Integer({ minimum: 1, maximum: 100_000, default: 1000 }),
    /** Channels one connection may hold open at once (OpenSSH's MaxSessions defaults to 10). */
    max_channels_per_session: Type.Integer({ minimum: 1, maximum: 1000, default: 10 }),
    /** Token attempts per connection before it is disconnected (OpenSSH's MaxAuthTries is 6). */
    max_auth_attempts: Type.Integer({ minimum: 1, maximum: 20, default: 3 }),
    /** From accept to a successful login. */
    auth_timeout_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 60_000 }),
    upstream_connect_timeout_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000 }),
    /**
     * Window-change requests forwarded per channel at most once per this interval; the ones in
     * between are coalesced into the next (the last size always arrives). Damps a resize flood.
     */
    resize_interval_ms: Type.Integer({ minimum: 0, maximum: 10_000, default: 50 }),
    /**
     * Public keys mapped to identities (public-keys.ts): a caller holding one of these keys logs in
     * without a token. Entries `{ key, sub, groups?, actor_kind?, expires_at? }`, validated at start.
     */
    public_keys: Type.Array(PublicKeyEntrySchema, { maxItems: 100_000, default: [] }),
    /** A YAML list of the same entries, re-read when it changes: removing an entry revokes the key. */
    public_keys_file: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

export const SshTargetSchema = Type.Object(
  {
    /** Name clients put after `@` in the SSH user name (`alice@web-1`); no '@'. */
    id: Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9._-]+$' }),
    protocol: Type.Literal('ssh'),
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 22 }),
    /** Account the gateway logs in as; callers never learn its key or password. */
    user: Type.String({ minLength: 1 }),
    /**
     * The target's host keys, pinned: OpenSSH public key lines (`ssh-ed25519 AAAA…`, as in
     * /etc/ssh/ssh_host_*_key.pub or `ssh-keyscan` output). Any other key ends the connection.
     * Required: the gateway never trusts a key on first use.
     */
    host_keys: Type.Array(Type.String({ minLength: 16, maxLength: 16_384 }), { minItems: 1, maxItems: 16 }),
    /** OpenSSH/PEM private key the gateway logs in with (preferred), … */
    private_key: Type.Optional(SecretRef),
    /** … its passphrase, … */
    passphrase: Type.Optional(SecretRef),
    /** … or a password. */
    password: Type.Optional(SecretRef),
  },
  { additionalProperties: false },
);

export type SshListenerConfig = Readonly<Static<typeof SshListenerSchema>>;
export type SshTargetConfig = Readonly<Static<typeof SshTargetSchema>>;
