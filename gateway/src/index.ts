/**
 * @vigil/gateway entry point: `startGateway` validates what it is given, loads TLS material and
 * checks every target secret resolves (fail fast: a typo in a SecretRef is a startup error, not a
 * 3 a.m. login failure), then starts the protocol listeners (PostgreSQL today).
 */
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { createHash, randomUUID } from 'node:crypto';
import { canonicalJson } from '@vigil/schemas';
import { SessionRecorder } from './recorder/recorder.ts';
import type { TokenVerifier } from '@vigil/identity/types';
import type { RecordSink } from './recorder/sink.ts';
import { parseGatewayConfig, type GatewaySection, type TargetConfig } from './config.ts';
import { gatewayError, isGatewayError } from './errors.ts';
import { resolveSecret } from './secrets.ts';
import { silentLogger, type Logger } from './logger.ts';
import { PgProxy, type PgMetrics } from './protocols/pg/proxy.ts';
import type { PolicyRuntime } from './protocols/pg/enforce.ts';
import { watchPolicy, type CompiledPolicy, type PolicyHandle } from './policy/index.ts';
import { initSqlParser, createSqlAnalyser } from './sql/analyse.ts';
import { createMaskEngine } from './mask/engine.ts';
import type { MaskRuntime } from './protocols/pg/mask-stream.ts';
import { SshProxy, type SshMetrics, type SshTarget } from './protocols/ssh/proxy.ts';
import { loadOrCreateHostKey, parsePinnedKeys } from './protocols/ssh/host-keys.ts';
import { PublicKeyDirectory } from './protocols/ssh/public-keys.ts';
import type { SshTargetConfig } from './protocols/ssh/config.ts';

export { parseGatewayConfig, type GatewayConfig, type GatewaySection, type TargetConfig } from './config.ts';
export { GATEWAY_ERRORS, GatewayError, type GatewayErrorCode } from './errors.ts';
export { type Logger, silentLogger } from './logger.ts';
export { EventSink, SessionRecorder } from './recorder/index.ts';
export { ApprovalBroker, type ApprovalService } from './approvals/broker.ts';
import type { ApprovalService } from './approvals/broker.ts';

export const GATEWAY_VERSION = '0.1.0';

export interface StartGatewayOptions {
  /** The `gateway` section (parsed, or raw: it is validated either way). */
  config: GatewaySection | Record<string, unknown>;
  targets: readonly TargetConfig[] | readonly Record<string, unknown>[];
  /** `protocol: ssh` targets (parseGatewayConfig's ssh_targets); they may also be given in `targets`. */
  ssh_targets?: readonly SshTargetConfig[] | readonly Record<string, unknown>[];
  verifier: TokenVerifier;
  sink: RecordSink;
  logger?: Logger;
  /** Environment for SecretRef `{ env }` resolution; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Just-in-time approval (approvals/broker.ts); without it `require_approval` is enforced as a block. */
  approvals?: ApprovalService;
}

export interface Gateway {
  postgres: { host: string; port: number };
  /** Present when `gateway.ssh` is configured. */
  ssh?: { host: string; port: number; fingerprint: string };
  close(): Promise<void>;
  activeSessions(): number;
  metrics: { postgres: PgMetrics; ssh?: SshMetrics };
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw gatewayError('GW_ERR_TLS_CONFIG', `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

export async function startGateway(options: StartGatewayOptions): Promise<Gateway> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? silentLogger;
  // Re-validating a parsed config is cheap and keeps one code path for raw and parsed input.
  const { gateway, targets, ssh_targets } = parseGatewayConfig({ gateway: options.config, targets: [...options.targets, ...(options.ssh_targets ?? [])] }, env);
  const pg = gateway.postgres;

  let secureContext: tls.SecureContext | undefined;
  if (pg.tls) {
    const [cert, key] = await Promise.all([readPem(pg.tls.cert_file, 'certificate'), readPem(pg.tls.key_file, 'key')]);
    try {
      secureContext = tls.createSecureContext({ cert, key });
    } catch (err) {
      throw gatewayError('GW_ERR_TLS_CONFIG', `invalid TLS certificate/key (${pg.tls.cert_file}): ${(err as Error).message}`);
    }
  }
  const targetCa = new Map<string, Buffer>();
  const problems: string[] = [];
  for (const t of targets) {
    if (t.tls?.ca_file) targetCa.set(t.id, await readPem(t.tls.ca_file, `CA file of target "${t.id}"`));
    if (t.password) {
      try {
        await resolveSecret(t.password, env);
      } catch (err) {
        if (!isGatewayError(err)) throw err;
        problems.push(`target "${t.id}": ${err.message}`);
      }
    }
  }
  const sshTargets = new Map<string, SshTarget>();
  for (const t of ssh_targets) {
    sshTargets.set(t.id, Object.freeze({ ...t, pinned: parsePinnedKeys(t.host_keys, `/targets(ssh ${t.id})`) }));
    for (const ref of [t.private_key, t.passphrase, t.password]) {
      if (!ref) continue;
      try {
        await resolveSecret(ref, env);
      } catch (err) {
        if (!isGatewayError(err)) throw err;
        problems.push(`target "${t.id}": ${err.message}`);
      }
    }
  }
  if (problems.length > 0) throw gatewayError('GW_ERR_SECRET_UNRESOLVED', problems.join('; '));

  // Policy: loaded now (an unreadable or invalid file throws its PolicyError: no start without the
  // policy we were given), then hot-reloaded; a bad reload keeps the running policy and is logged.
  let policyHandle: PolicyHandle | undefined;
  let policy: PolicyRuntime | undefined;
  if (gateway.policy_file) {
    await initSqlParser();
    const file = gateway.policy_file;
    // The process's own chain: which policy is in force, and every reload refused (with its problems).
    const control = new SessionRecorder(options.sink, `gateway:${gateway.id}:${randomUUID()}`, { gateway_id: gateway.id, gateway_version: GATEWAY_VERSION });
    let inForce = '';
    const loaded = (p: CompiledPolicy, reason: 'start' | 'reload'): void => {
      inForce = policyDigest(p);
      control.event({ type: 'policy.loaded', version: 1, file, digest: inForce, rules: p.policy.rules.length, reason });
    };
    policyHandle = watchPolicy(
      file,
      (p) => {
        loaded(p, 'reload');
        logger.info({ policy_file: file, rules: p.policy.rules.length, digest: inForce }, 'policy reloaded');
      },
      (err) => {
        const problems = err.problems.map((x) => ({ path: x.path, message: x.message, ...(x.line !== undefined ? { line: x.line } : {}), ...(x.col !== undefined ? { col: x.col } : {}) }));
        control.event({ type: 'policy.rejected', version: 1, file, code: err.code, problems, in_force_digest: inForce });
        logger.warn({ policy_file: file, code: err.code, problems: err.problems.length, err: err.message }, 'policy reload rejected; the running policy stays in force');
      },
    );
    const handle = policyHandle;
    loaded(handle.current(), 'start');
    policy = { current: () => handle.current(), analyser: createSqlAnalyser() };
  }
  // Masking runs wherever a policy does (its rules say what to mask). The hash key is resolved once:
  // it is per deployment, not per connection.
  let mask: MaskRuntime | undefined;
  if (policy) {
    let hashKey: string | undefined;
    if (gateway.masking.hash_key) {
      try {
        hashKey = (await resolveSecret(gateway.masking.hash_key, env)).reveal();
      } catch (err) {
        policyHandle?.close();
        throw err;
      }
    } else if (policy.current().policy.rules.some((r) => r.mask?.strategy === 'hash')) {
      logger.warn({}, 'mask rules use strategy hash but gateway.masking.hash_key is not set: hash is applied as redact');
    }
    mask = { engine: createMaskEngine({ hashKey }), mask_before_log: gateway.masking.mask_before_log, catalog_ttl_ms: gateway.masking.catalog_ttl_ms };
  }

  const proxy = new PgProxy({
    listener: pg,
    gatewayId: gateway.id,
    gatewayVersion: GATEWAY_VERSION,
    failClosed: gateway.fail_closed,
    maxLogStallMs: gateway.max_log_stall_ms,
    targets: new Map(targets.map((t) => [t.id, t])),
    targetCa,
    verifier: options.verifier,
    sink: options.sink,
    logger,
    env,
    secureContext,
    policy,
    ...(options.approvals ? { approvals: options.approvals } : {}),
    mask,
  });
  // SSH (gateway.ssh): its own listener, the same sink, verifier and policy.
  let sshProxy: SshProxy | undefined;
  let sshFingerprint = '';
  if (gateway.ssh) {
    const hostKey = await loadOrCreateHostKey(gateway.ssh.host_key_file);
    sshFingerprint = hostKey.fingerprint;
    if (hostKey.created) logger.info({ host_key_file: gateway.ssh.host_key_file, fingerprint: hostKey.fingerprint }, 'ssh host key created');
    const keysFile = gateway.ssh.public_keys_file;
    const publicKeys =
      gateway.ssh.public_keys.length > 0 || keysFile
        ? await PublicKeyDirectory.load(gateway.ssh.public_keys, keysFile, (r) =>
            r.problem ? logger.error({ file: keysFile, err: r.problem }, 'ssh public key file invalid: its keys are refused') : logger.info({ file: keysFile, keys: r.keys }, 'ssh public key file reloaded'),
          )
        : undefined;
    sshProxy = new SshProxy({
      listener: gateway.ssh,
      hostKey: hostKey.key,
      gatewayId: gateway.id,
      gatewayVersion: GATEWAY_VERSION,
      failClosed: gateway.fail_closed,
      maxLogStallMs: gateway.max_log_stall_ms,
      targets: sshTargets,
      verifier: options.verifier,
      sink: options.sink,
      logger,
      env,
      ...(policyHandle ? { policy: { current: () => policyHandle!.current() } } : {}),
      ...(options.approvals ? { approvals: options.approvals } : {}),
      ...(publicKeys ? { publicKeys } : {}),
    });
  }
  const onPressure = (on: boolean): void => {
    proxy.onSinkPressure(on);
    sshProxy?.onSinkPressure(on);
  };
  const onFailure = (err: Error): void => {
    logger.error({ err: err.message, fail_closed: gateway.fail_closed }, 'event log failure: events cannot be made durable');
    proxy.onSinkFailure();
    sshProxy?.onSinkFailure();
  };
  options.sink.on('pressure', onPressure);
  options.sink.on('failure', onFailure);
  let address: { host: string; port: number };
  let sshAddress: { host: string; port: number } | undefined;
  try {
    address = await proxy.listen();
    if (sshProxy) {
      try {
        sshAddress = await sshProxy.listen();
      } catch (err) {
        await proxy.close();
        throw err;
      }
      logger.info({ gateway_id: gateway.id, host: sshAddress.host, port: sshAddress.port, targets: sshTargets.size, fingerprint: sshFingerprint }, 'ssh gateway listening');
    }
  } catch (err) {
    options.sink.off('pressure', onPressure);
    options.sink.off('failure', onFailure);
    policyHandle?.close();
    throw err;
  }
  logger.info({ gateway_id: gateway.id, host: address.host, port: address.port, tls: !!secureContext, targets: targets.length, policy: !!policy }, 'pg gateway listening');

  let closing: Promise<void> | undefined;
  return {
    postgres: address,
    ...(sshAddress ? { ssh: { ...sshAddress, fingerprint: sshFingerprint } } : {}),
    activeSessions: () => proxy.sessions.size + (sshProxy?.sessions.size ?? 0),
    metrics: { postgres: proxy.metrics, ...(sshProxy ? { ssh: sshProxy.metrics } : {}) },
    close() {
      closing ??= (async () => {
        await Promise.all([proxy.close(), sshProxy?.close()]);
        policyHandle?.close();
        options.sink.off('pressure', onPressure);
        options.sink.off('failure', onFailure);
        await options.sink.drain();
        logger.info({ gateway_id: gateway.id }, 'pg gateway closed');
      })();
      return closing;
    },
  };
}

/** SHA-256 of the validated policy's canonical JSON: the same digest means the same rules in force. */
function policyDigest(p: CompiledPolicy): string {
  return createHash('sha256').update(canonicalJson(p.policy)).digest('hex');
}
