/**
 * Gateway configuration: the `gateway` section and the `targets` list. Validated once, defaults
 * from the schema, unknown keys rejected, every problem reported at once, the result frozen.
 * Precedence (one place, here): explicit value > environment (VIGIL_GATEWAY_ID,
 * VIGIL_PG_LISTEN_HOST, VIGIL_PG_LISTEN_PORT) > schema default.
 *
 * Target credentials are SecretRefs, never values (except the dev-only `{ value }` form).
 */
import { hostname } from 'node:os';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { gatewayError } from './errors.ts';
import { SecretRef } from './secrets.ts';
import { SshListenerSchema, SshTargetSchema, type SshListenerConfig, type SshTargetConfig } from './protocols/ssh/config.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

export const PostgresListenerSchema = Type.Object(
  {
    listen_host: Type.String({ minLength: 1, default: '127.0.0.1' }),
    /** 0 picks a free port (tests); the bound port is reported by startGateway. */
    listen_port: Type.Integer({ minimum: 0, maximum: 65535, default: 15432 }),
    /** Certificate and key (PEM) for client TLS; without it SSLRequest is answered 'N'. */
    tls: Type.Optional(
      Type.Object({ cert_file: Type.String({ minLength: 1 }), key_file: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    ),
    /** Refuse clients that start without TLS (FATAL 28000). Needs `tls`. */
    require_tls: Type.Boolean({ default: false }),
    /**
     * Largest single protocol message, either direction. Every message is held whole to be recorded
     * as one frame event, so this bounds per-session memory. PostgreSQL itself allows up to 1 GiB
     * (a DataRow with one huge value); 64 MiB covers ordinary rows and COPY chunks while keeping a
     * hostile client from pinning a gigabyte. Raise it for very large bytea/text values.
     */
    max_frame_bytes: Type.Integer({ minimum: 64 * KiB, maximum: 1024 * MiB - 1, default: 64 * MiB }),
    /** Startup-phase packets (no type byte); PostgreSQL's own MAX_STARTUP_PACKET_LENGTH is 10000. */
    max_startup_bytes: Type.Integer({ minimum: 1024, maximum: 1 * MiB, default: 10_000 }),
    /**
     * Connections held at once, authenticated or not; more get 53300. With
     * max_buffered_bytes_per_session this bounds the gateway's memory (worst case the product).
     */
    max_sessions: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000 }),
    /**
     * Hard cap on what one session holds in memory: partly reassembled messages of both directions
     * plus bytes queued toward either socket. Sockets are paused long before this under normal
     * backpressure; crossing it ends the session (53200) instead of growing. Must be ≥ max_frame_bytes.
     */
    max_buffered_bytes_per_session: Type.Integer({ minimum: 128 * KiB, default: 160 * MiB }),
    /** From accept to the first relayed message (PostgreSQL's authentication_timeout is 60 s). */
    auth_timeout_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 60_000 }),
    upstream_connect_timeout_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000 }),
  },
  { additionalProperties: false },
);

export const MaskingSchema = Type.Object(
  {
    /**
     * HMAC key of the `hash` strategy, one per deployment (every gateway and ingest process of it
     * must share it so hashed values join). Absent: `hash` is applied as `redact`.
     */
    hash_key: Type.Optional(SecretRef),
    /**
     * Record masked frames in the event log: statements and parameters the client sent pass through
     * the value detectors before they are recorded (results are always recorded as the client
     * received them, i.e. masked). Off: the log holds what the client sent, verbatim.
     */
    mask_before_log: Type.Boolean({ default: false }),
    /** A catalog snapshot older than this is refreshed on next use (DDL through the gateway refreshes at once). */
    catalog_ttl_ms: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 30_000 }),
  },
  { additionalProperties: false },
);

export const GatewaySectionSchema = Type.Object(
  {
    /** Stable id of this gateway instance in every event; default: the host name. */
    id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    postgres: Type.Object({}, { additionalProperties: true }),
    /** SSH listener (protocols/ssh/config.ts); absent: no SSH listener. */
    ssh: Type.Optional(Type.Object({}, { additionalProperties: true })),
    /** Refuse new sessions (57P03) while the event log cannot make events durable. */
    fail_closed: Type.Boolean({ default: true }),
    /**
     * With fail_closed: refuse new sessions (57P03) once the event log has held the gateway under
     * backpressure for this long (log full, disk or broker stalled). Live sessions stay paused —
     * nothing is dropped — but nobody new is let in to wait behind them. 0 disables.
     */
    max_log_stall_ms: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 10_000 }),
    /**
     * `auto`: on Linux with at least two usable CPUs, the socket thread is pinned to the first
     * usable CPU and the log thread (sealing, appending) to the last, once everything has started,
     * so the two hot threads stop migrating between CPUs (docs/architecture.md, BENCHMARKS.md).
     * `off`: the scheduler places them. Unset: `auto` in embedded mode (one Vigil per machine),
     * `off` in distributed mode, where several gateways may share a host and would all pick the
     * same CPUs.
     */
    cpu_affinity: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('off')])),
    /**
     * Policy file (YAML, docs/policy.md), enforced inline and hot-reloaded. Absent: no policy, and no
     * statement is parsed at all. Present: an unreadable or invalid file stops the start.
     */
    policy_file: Type.Optional(Type.String({ minLength: 1 })),
    /** Masking (docs/masking.md): the keyed-hash secret, the event log's contents, catalog freshness. */
    masking: Type.Optional(MaskingSchema),
  },
  { additionalProperties: false },
);

export const TargetTlsSchema = Type.Object(
  {
    /** disable: plaintext. require: TLS, certificate not verified. verify-full: CA + host name verified. */
    mode: Type.Union([Type.Literal('disable'), Type.Literal('require'), Type.Literal('verify-full')], { default: 'disable' }),
    /** PEM CA bundle for verify-full; default: Node's bundled CAs. */
    ca_file: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

export const TargetSchema = Type.Object(
  {
    /** Name clients put in `database` (`target` or `target/dbname`); no '/'. */
    id: Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9._-]+$' }),
    protocol: Type.Literal('postgres'),
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 5432 }),
    /** Database used when the client gives only the target id. */
    database: Type.String({ minLength: 1 }),
    /** Role the gateway logs in as; callers never learn its password. */
    user: Type.String({ minLength: 1 }),
    password: Type.Optional(SecretRef),
    /**
     * Password methods the gateway answers when the target asks (trust is always fine: nothing is
     * sent). Default SCRAM only. md5 hands out a replayable hash and cleartext the password itself
     * to whoever answers at the target's address: allow them only with tls.mode verify-full.
     */
    auth_methods: Type.Array(Type.Union([Type.Literal('scram-sha-256'), Type.Literal('md5'), Type.Literal('cleartext')]), {
      minItems: 1,
      uniqueItems: true,
      default: ['scram-sha-256'],
    }),
    /** Absent: plaintext (mode disable). */
    tls: Type.Optional(TargetTlsSchema),
  },
  { additionalProperties: false },
);

export type PostgresListenerConfig = Readonly<Static<typeof PostgresListenerSchema>>;
export type TargetConfig = Readonly<Static<typeof TargetSchema>>;
export interface GatewaySection {
  readonly id: string;
  readonly postgres: PostgresListenerConfig;
  readonly fail_closed: boolean;
  readonly max_log_stall_ms: number;
  readonly cpu_affinity?: 'auto' | 'off';
  readonly policy_file?: string;
  readonly masking: Readonly<Static<typeof MaskingSchema>>;
  readonly ssh?: SshListenerConfig;
}
export interface GatewayConfig {
  readonly gateway: GatewaySection;
  /** PostgreSQL targets. */
  readonly targets: readonly TargetConfig[];
  /** `protocol: ssh` entries of the same `targets` list (ids are unique across both). */
  readonly ssh_targets: readonly SshTargetConfig[];
}

function errorsOf(schema: Parameters<typeof Value.Errors>[0], value: unknown, prefix: string): string[] {
  return [...Value.Errors(schema, value)].map((e) => `${prefix}${e.path || ''}: ${e.message}`);
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/**
 * Validate `{ gateway, targets }`, apply defaults and environment, freeze. Throws GW_ERR_CONFIG
 * listing every problem at once.
 */
export function parseGatewayConfig(input: unknown, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const raw = (Value.Clone(input ?? {}) ?? {}) as Record<string, unknown>;
  const errors: string[] = [];
  if (typeof raw !== 'object' || Array.isArray(raw)) throw gatewayError('GW_ERR_CONFIG', 'invalid gateway config: /: must be an object');
  for (const key of Object.keys(raw)) if (key !== 'gateway' && key !== 'targets') errors.push(`/${key}: unknown key`);

  const gw = Value.Default(GatewaySectionSchema, (raw.gateway ?? { postgres: {} }) as object) as Record<string, unknown>;
  if (gw && typeof gw === 'object' && gw.postgres === undefined) gw.postgres = {};
  errors.push(...errorsOf(GatewaySectionSchema, gw, '/gateway'));
  const pgInput = { ...((gw?.postgres as object | undefined) ?? {}) } as Record<string, unknown>;
  // Environment sits between explicit values and defaults.
  if (pgInput.listen_host === undefined && env.VIGIL_PG_LISTEN_HOST) pgInput.listen_host = env.VIGIL_PG_LISTEN_HOST;
  if (pgInput.listen_port === undefined && env.VIGIL_PG_LISTEN_PORT) {
    const port = Number(env.VIGIL_PG_LISTEN_PORT);
    if (Number.isInteger(port)) pgInput.listen_port = port;
    else errors.push(`env VIGIL_PG_LISTEN_PORT: not an integer`);
  }
  const pg = Value.Default(PostgresListenerSchema, pgInput) as Static<typeof PostgresListenerSchema>;
  errors.push(...errorsOf(PostgresListenerSchema, pg, '/gateway/postgres'));
  if (errors.length === 0) {
    if (pg.require_tls && !pg.tls) errors.push('/gateway/postgres/require_tls: needs /gateway/postgres/tls (cert_file, key_file)');
    if (pg.max_buffered_bytes_per_session < pg.max_frame_bytes) {
      errors.push('/gateway/postgres/max_buffered_bytes_per_session: must be at least max_frame_bytes');
    }
  }

  let ssh: Static<typeof SshListenerSchema> | undefined;
  if (gw && typeof gw === 'object' && gw.ssh !== undefined) {
    ssh = Value.Default(SshListenerSchema, { ...(gw.ssh as object) }) as Static<typeof SshListenerSchema>;
    errors.push(...errorsOf(SshListenerSchema, ssh, '/gateway/ssh'));
  }

  const targetsIn = raw.targets ?? [];
  const targets: Static<typeof TargetSchema>[] = [];
  const sshTargets: Static<typeof SshTargetSchema>[] = [];
  if (!Array.isArray(targetsIn)) errors.push('/targets: must be an array');
  else {
    const seen = new Set<string>();
    targetsIn.forEach((t, i) => {
      if (t && typeof t === 'object' && (t as { protocol?: unknown }).protocol === 'ssh') {
        const sshTarget = Value.Default(SshTargetSchema, Value.Clone(t)) as Static<typeof SshTargetSchema>;
        const errs = errorsOf(SshTargetSchema, sshTarget, `/targets/${i}`);
        if (errs.length === 0 && !sshTarget.private_key && !sshTarget.password) errs.push(`/targets/${i}: an ssh target needs private_key or password`);
        errors.push(...errs);
        if (errs.length === 0) {
          if (seen.has(sshTarget.id)) errors.push(`/targets/${i}/id: duplicate target id "${sshTarget.id}"`);
          seen.add(sshTarget.id);
          sshTargets.push(sshTarget);
        }
        return;
      }
      const withDefaults = Value.Default(TargetSchema, Value.Clone(t)) as Static<typeof TargetSchema>;
      if (withDefaults && typeof withDefaults === 'object' && withDefaults.tls) Value.Default(TargetTlsSchema, withDefaults.tls);
      const errs = errorsOf(TargetSchema, withDefaults, `/targets/${i}`);
      errors.push(...errs);
      if (errs.length === 0) {
        if (seen.has(withDefaults.id)) errors.push(`/targets/${i}/id: duplicate target id "${withDefaults.id}"`);
        seen.add(withDefaults.id);
        targets.push(withDefaults);
      }
    });
  }
  if (errors.length > 0) throw gatewayError('GW_ERR_CONFIG', `invalid gateway config: ${errors.join('; ')}`);

  const id = (gw.id as string | undefined) ?? env.VIGIL_GATEWAY_ID ?? hostname();
  return deepFreeze({
    gateway: {
      id,
      postgres: pg,
      fail_closed: gw.fail_closed as boolean,
      max_log_stall_ms: gw.max_log_stall_ms as number,
      ...(gw.cpu_affinity !== undefined ? { cpu_affinity: gw.cpu_affinity as 'auto' | 'off' } : {}),
      ...(gw.policy_file !== undefined ? { policy_file: gw.policy_file as string } : {}),
      masking: Value.Default(MaskingSchema, Value.Clone(gw.masking ?? {})) as Static<typeof MaskingSchema>,
      ...(ssh !== undefined ? { ssh } : {}),
    },
    targets,
    ssh_targets: sshTargets,
  });
}
