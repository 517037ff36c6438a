/**
 * What masking at rest needs, loaded once per ingest process: the policy (the same file the
 * gateway enforces, hot-reloaded the same way: a rejected file keeps the policy in force), the
 * deployment's hash key (so a `hash` value stored here equals the one the client received), one
 * compiled masking engine and one SQL analyser (rule conditions on statement features and
 * relations are evaluated exactly as the gateway evaluates them).
 *
 * Without a policy file, `without_policy` decides (config.ts): `store` or `redact`. A `store`
 * runtime that meets a `policy.loaded` event (a gateway of this deployment enforces a policy this
 * process was not given) switches to `redact` for good and says so (ING_ERR_MASK_POLICY_MISSING):
 * ingest cannot know what that policy masks, so it masks every constant rather than store them.
 */
import { initSqlParser, createSqlAnalyser, type SqlAnalyser } from '@vigil/gateway/sql/analyse';
import { watchPolicy, type CompiledPolicy, type PolicyHandle } from '@vigil/gateway/policy/index';
import { createMaskEngine, type MaskEngine } from '@vigil/gateway/mask/engine';
import { resolveSecret } from '@vigil/gateway/secrets';
import type { IngestConfig } from '../../config.ts';
import { IngestError, type Logger } from '../../errors.ts';

export type AtRestMode = 'policy' | 'store' | 'redact';

export interface MaskingRuntime {
  /** `policy`: the policy's mask rules; `store`: nothing to mask; `redact`: every constant and parameter. */
  mode: AtRestMode;
  /** The policy in force (mode `policy`). */
  policy(): CompiledPolicy | undefined;
  readonly engine: MaskEngine;
  readonly analyser: SqlAnalyser | undefined;
  readonly preview: { rows: number; value_bytes: number };
  /** A gateway announced a policy (policy.loaded): see the header. */
  onGatewayPolicy(): void;
  close(): void;
}

export async function openMaskingRuntime(config: IngestConfig['masking'], logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<MaskingRuntime> {
  let hashKey: string | undefined;
  if (config.hash_key) {
    try {
      hashKey = (await resolveSecret(config.hash_key, env)).reveal();
    } catch (err) {
      throw new IngestError('ING_ERR_CONFIG', `ingest.masking.hash_key: ${(err as Error).message}`, { cause: err });
    }
  }
  const engine = createMaskEngine({ hashKey });
  const preview = { rows: config.preview_rows, value_bytes: config.preview_value_bytes };
  if (config.policy_file === undefined) {
    let mode: AtRestMode = config.without_policy;
    // The analyser is not needed; the parser is (redact masks constants found by its scanner).
    await initSqlParser();
    return {
      get mode() {
        return mode;
      },
      policy: () => undefined,
      engine,
      analyser: undefined,
      preview,
      onGatewayPolicy() {
        if (mode !== 'store') return;
        mode = 'redact';
        logger.error(
          { code: 'ING_ERR_MASK_POLICY_MISSING' },
          'ING_ERR_MASK_POLICY_MISSING: a gateway enforces a policy but ingest has no ingest.masking.policy_file; masking every constant and parameter from now on',
        );
      },
      close() {},
    };
  }
  await initSqlParser();
  const file = config.policy_file;
  let handle: PolicyHandle;
  try {
    handle = watchPolicy(
      file,
      (p) => logger.info({ policy_file: file, rules: p.policy.rules.length }, 'ingest: policy reloaded (masking at rest)'),
      (err) => logger.warn({ code: 'ING_ERR_MASK_POLICY', policy_file: file, problems: err.problems.length, err: err.message }, 'ING_ERR_MASK_POLICY: policy reload rejected; the policy in force stays'),
    );
  } catch (err) {
    throw new IngestError('ING_ERR_MASK_POLICY', `ingest.masking.policy_file: ${(err as Error).message}`, { cause: err });
  }
  if (!hashKey && handle.current().policy.rules.some((r) => r.mask?.strategy === 'hash')) {
    logger.warn({}, 'mask rules use strategy hash but ingest.masking.hash_key is not set: hash is applied as redact at rest');
  }
  return {
    mode: 'policy',
    policy: () => handle.current(),
    engine,
    analyser: createSqlAnalyser(),
    preview,
    onGatewayPolicy() {},
    close: () => handle.close(),
  };
}
