/**
 * Configuration: one YAML file, validated once, every error reported at once, result frozen.
 *
 * Precedence, in this one place: explicit (CLI flag) > environment > file > schema default.
 *   VIGIL_CONFIG           config file path
 *   VIGIL_DATA_DIR         data_dir
 *   VIGIL_CLICKHOUSE_URL   store: { kind: server, url }
 *   VIGIL_KAFKA_BROKERS    log: { kind: kafka, kafka.brokers } (comma separated)
 *
 * Each component owns the schema of its section (gateway/src/config.ts, identity/src/config.ts, …);
 * this module checks the top level, fills the embedded defaults (log and chDB under data_dir, the
 * dev issuer), then runs every section's parser and collects all their problems.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parseIdentityConfig, type IdentityConfig } from '@vigil/identity/config';
import { parseLocalEventLogConfig, type LocalEventLogConfig } from '@vigil/eventlog/local/config';
import { parseKafkaEventLogConfig as parseKafkaConfig, type KafkaEventLogConfig as KafkaConfig } from '@vigil/eventlog/kafka/config';
import { parseGatewayConfig, type GatewayConfig } from '@vigil/gateway/config';
import { loadIngestConfig as parseIngestConfig, type IngestConfig } from '@vigil/ingest/config';
import { parseApiConfig, type ApiConfig } from '@vigil/replay-ui/config';
import type { StoreConfig } from '@vigil/ingest/store/client';

export class ConfigError extends Error {
  readonly code = 'CLI_ERR_CONFIG';
  readonly retriable = false;
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration (${source}): ${problems.join('; ')}`);
  }
}

const TopLevel = Type.Object(
  {
    mode: Type.Union([Type.Literal('embedded'), Type.Literal('distributed')], { default: 'embedded' }),
    data_dir: Type.String({ minLength: 1, default: './data' }),
    gateway: Type.Optional(Type.Unknown()),
    targets: Type.Array(Type.Unknown(), { default: [] }),
    identity: Type.Optional(Type.Unknown()),
    dev_issuer: Type.Optional(
      Type.Object(
        {
          enabled: Type.Boolean(),
          /** Where the signing key lives; default <data_dir>/issuer. */
          dir: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
    log: Type.Object(
      {
        kind: Type.Union([Type.Literal('local'), Type.Literal('kafka')], { default: 'local' }),
        local: Type.Optional(Type.Unknown()),
        kafka: Type.Optional(Type.Unknown()),
        /** Gateway spool (distributed): a local log that buffers while Kafka is unreachable. */
        spool: Type.Optional(Type.Unknown()),
      },
      { additionalProperties: false, default: {} },
    ),
    store: Type.Object(
      {
        kind: Type.Union([Type.Literal('chdb'), Type.Literal('server')], { default: 'chdb' }),
        path: Type.Optional(Type.String()),
        url: Type.Optional(Type.String()),
        database: Type.Optional(Type.String()),
        username: Type.Optional(Type.String()),
        password_env: Type.Optional(Type.String({ description: 'env var holding the ClickHouse password' })),
      },
      { additionalProperties: false, default: {} },
    ),
    ingest: Type.Optional(Type.Unknown()),
    api: Type.Optional(Type.Unknown()),
    log_level: Type.Union(
      [Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')],
      { default: 'info' },
    ),
  },
  { additionalProperties: false },
);
type TopLevel = Static<typeof TopLevel>;

export interface VigilConfig {
  source: string;
  mode: 'embedded' | 'distributed';
  data_dir: string;
  log_level: 'debug' | 'info' | 'warn' | 'error';
  gateway: GatewayConfig;
  identity: IdentityConfig;
  /** Set when the dev issuer signs tokens (embedded default). */
  dev_issuer?: { dir: string; issuer: string };
  log: { kind: 'local'; local: LocalEventLogConfig } | { kind: 'kafka'; kafka: KafkaConfig; spool?: LocalEventLogConfig };
  store: StoreConfig;
  ingest: IngestConfig;
  api: ApiConfig;
}

/** Bytes a frame event adds around the protocol message (envelope header, log record framing). */
const FRAME_RECORD_OVERHEAD = 4096;

const SAMPLE = fileURLToPath(new URL('../../deploy/config/vigil.yaml', import.meta.url));

/** Which file: explicit > VIGIL_CONFIG > ./vigil.yaml > the shipped sample. */
export function resolveConfigFile(explicit?: string, env = process.env): string {
  if (explicit) return resolve(explicit);
  if (env.VIGIL_CONFIG) return resolve(env.VIGIL_CONFIG);
  if (existsSync('vigil.yaml')) return resolve('vigil.yaml');
  return SAMPLE;
}

export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): VigilConfig {
  const env = opts.env ?? process.env;
  const source = resolveConfigFile(opts.file, env);
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(source, 'utf8')) ?? {};
  } catch (err) {
    throw new ConfigError(source, [(err as Error).message]);
  }
  return parseConfig(raw, source, env);
}

/** Validate a parsed document (exported for tests and for programmatic starts). */
export function parseConfig(raw: unknown, source = '<inline>', env: NodeJS.ProcessEnv = process.env): VigilConfig {
  const problems: string[] = [];
  const doc = Value.Default(TopLevel, Value.Clone(raw ?? {})) as TopLevel;
  for (const e of Value.Errors(TopLevel, doc)) problems.push(`${e.path || '/'}: ${e.message}`);
  if (problems.length > 0) throw new ConfigError(source, problems);

  // Environment overrides (one place).
  if (env.VIGIL_DATA_DIR) doc.data_dir = env.VIGIL_DATA_DIR;
  if (env.VIGIL_CLICKHOUSE_URL) doc.store = { ...doc.store, kind: 'server', url: env.VIGIL_CLICKHOUSE_URL };
  if (env.VIGIL_KAFKA_BROKERS) {
    doc.log = { ...doc.log, kind: 'kafka', kafka: { ...(doc.log.kafka as object), brokers: env.VIGIL_KAFKA_BROKERS.split(',') } };
  }
  const dataDir = resolve(doc.data_dir);

  // Each section parses itself; collect every section's problems before failing.
  const section = <T>(name: string, parse: () => T): T | undefined => {
    try {
      return parse();
    } catch (err) {
      const msg = (err as Error).message;
      problems.push(`${name}: ${msg}`);
      return undefined;
    }
  };

  const api = section('api', () => parseApiConfig(doc.api ?? {}));
  const devIssuerEnabled = doc.dev_issuer?.enabled ?? (doc.identity === undefined);
  const devIssuer = devIssuerEnabled
    ? {
        dir: resolve(doc.dev_issuer?.dir ?? join(dataDir, 'issuer')),
        issuer: `http://${api?.listen_host ?? '127.0.0.1'}:${api?.listen_port ?? 8480}`,
      }
    : undefined;
  const identity = section('identity', () =>
    parseIdentityConfig(doc.identity ?? { issuer: devIssuer!.issuer, jwks_file: join(devIssuer!.dir, 'jwks.json') }),
  );
  const ingest = section('ingest', () => parseIngestConfig(ingestWithMasking(doc)));

  let log: VigilConfig['log'] | undefined;
  if (doc.log.kind === 'local') {
    const local = section('log.local', () => parseLocalEventLogConfig({ dir: join(dataDir, 'log'), ...(doc.log.local as object) }));
    if (local) log = { kind: 'local', local };
  } else {
    const kafka = section('log.kafka', () => parseKafkaConfig(doc.log.kafka ?? {}));
    const spool = doc.log.spool
      ? section('log.spool', () => parseLocalEventLogConfig({ dir: join(dataDir, 'spool'), ...(doc.log.spool as object) }))
      : undefined;
    if (kafka) log = spool ? { kind: 'kafka', kafka, spool } : { kind: 'kafka', kafka };
  }

  // A frame is one log record: the gateway's largest message must fit the log's largest record, or
  // one oversized message would make events impossible to persist (and, fail-closed, refuse every
  // new session). Unless set explicitly, max_frame_bytes follows the log's limit; set explicitly
  // too high, it is a configuration error.
  const recordLimit = log ? (log.kind === 'local' ? log.local.max_record_bytes : log.kafka.max_batch_bytes) - FRAME_RECORD_OVERHEAD : undefined;
  const gwInput = structuredClone((doc.gateway ?? {}) as Record<string, any>);
  const explicitFrame = gwInput.postgres?.max_frame_bytes as number | undefined;
  if (recordLimit !== undefined) {
    if (explicitFrame === undefined) gwInput.postgres = { ...gwInput.postgres, max_frame_bytes: Math.min(recordLimit, 64 * 1024 * 1024) };
    else if (explicitFrame > recordLimit) {
      problems.push(`gateway.postgres.max_frame_bytes (${explicitFrame}) exceeds what one event-log record holds (${recordLimit}); raise the log's record limit (log.local.max_record_bytes / log.kafka.max_batch_bytes and the broker's message.max.bytes) or lower it`);
    }
  }
  // The SSH host key is kept with the rest of the embedded state unless the config names a file.
  if (gwInput.ssh && typeof gwInput.ssh === 'object' && gwInput.ssh.host_key_file === undefined) gwInput.ssh = { ...gwInput.ssh, host_key_file: join(dataDir, 'ssh', 'host_key') };
  const gateway = section('gateway', () => parseGatewayConfig({ gateway: gwInput, targets: doc.targets }));

  let store: StoreConfig | undefined;
  if (doc.store.kind === 'chdb') {
    store = { kind: 'chdb', path: resolve(doc.store.path ?? join(dataDir, 'clickhouse')) };
  } else if (!doc.store.url) {
    problems.push('store: kind server needs url (or VIGIL_CLICKHOUSE_URL)');
  } else {
    const password = doc.store.password_env ? env[doc.store.password_env] : undefined;
    if (doc.store.password_env && password === undefined) problems.push(`store: env ${doc.store.password_env} is not set`);
    store = { kind: 'server', url: doc.store.url, database: doc.store.database, username: doc.store.username, password };
  }
  if (doc.mode === 'distributed' && doc.log.kind === 'local') {
    problems.push('mode distributed needs log.kind kafka (or VIGIL_KAFKA_BROKERS): a local log cannot be shared by processes');
  }

  if (problems.length > 0) throw new ConfigError(source, problems);
  return deepFreeze({
    source,
    mode: doc.mode,
    data_dir: dataDir,
    log_level: doc.log_level,
    gateway: gateway!,
    identity: identity!,
    ...(devIssuer ? { dev_issuer: devIssuer } : {}),
    log: log!,
    store: store!,
    ingest: ingest!,
    api: api!,
  });
}

/**
 * Masking at rest follows the gateway of the same configuration unless ingest names its own: the
 * policy file and the hash key (docs/masking.md). Without any policy file, a distributed ingest
 * cannot know what its gateways enforce, so it masks every constant unless told `store`.
 */
function ingestWithMasking(doc: TopLevel): Record<string, unknown> {
  const ingest = structuredClone((doc.ingest ?? {}) as Record<string, any>);
  const gw = (doc.gateway ?? {}) as Record<string, any>;
  const masking = { ...(ingest.masking ?? {}) } as Record<string, unknown>;
  if (masking.policy_file === undefined && typeof gw.policy_file === 'string') masking.policy_file = gw.policy_file;
  if (masking.hash_key === undefined && gw.masking?.hash_key !== undefined) masking.hash_key = gw.masking.hash_key;
  if (masking.without_policy === undefined && masking.policy_file === undefined && doc.mode === 'distributed') masking.without_policy = 'redact';
  ingest.masking = masking;
  return ingest;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
