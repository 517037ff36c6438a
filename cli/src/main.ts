/**
 * `vigil` command line. One binary, one config file; the subcommand picks which components run
 * in this process:
 *   start    everything in one process (embedded: local log + chDB + dev issuer)
 *   gateway  only the gateway (distributed mode: Kafka log)
 *   ingest   only ingest (a member of the consumer group)
 *   api      only the API server
 *   token    mint a token from the dev issuer
 *   verify   verify the hash chain of every recorded session in the event log
 *   approve / deny / approvals   decide and list just-in-time approval requests (through the API)
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.ts';

const USAGE = `usage: vigil <command> [options]

commands:
  start      run gateway, ingest, API and UI in one process (embedded mode by default)
  gateway    run only the gateway
  ingest     run only ingest (one consumer-group member)
  api        run only the API server
  token      mint a token from the dev issuer:
               vigil token --sub alice [--groups dba,ops] [--roles analyst] [--ttl 1h] [--agent]
  verify     verify every recorded session's seq and hash chain in the event log:
               vigil verify [--session ID] [--json] [--idle-ms 2000]   (exit 1 on any failure)
  approve    approve a held statement:  vigil approve ID --reason TEXT [--break-glass | --override force]
  deny       deny a held statement:     vigil deny ID --reason TEXT
  approvals  list approval requests:    vigil approvals [--state pending|all|…] [--json]
               (these three call the API with your own token: --token JWT or $VIGIL_TOKEN; --api URL)

options:
  -c, --config FILE   config file (default: $VIGIL_CONFIG, ./vigil.yaml, then deploy/config/vigil.yaml)
  -h, --help          this text
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  const { values } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: false,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    const config = loadConfig({ file: values.config as string | undefined });
    switch (command) {
      case 'start':
        return await (await import('./commands/run.ts')).run(config, { gateway: true, ingest: true, api: true });
      case 'gateway':
        return await (await import('./commands/run.ts')).run(config, { gateway: true });
      case 'ingest':
        return await (await import('./commands/run.ts')).run(config, { ingest: true });
      case 'api':
        return await (await import('./commands/run.ts')).run(config, { api: true });
      case 'token':
        return await (await import('./commands/token.ts')).token(config, rest);
      case 'verify':
        return await (await import('./commands/verify.ts')).verify(config, rest);
      case 'approve':
      case 'deny':
        return await (await import('./commands/approve.ts')).decide(config, command, rest);
      case 'approvals':
        return await (await import('./commands/approve.ts')).list(config, rest);
      default:
        process.stderr.write(`vigil: unknown command '${command}'\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vigil: invalid configuration (${err.source}):\n${err.problems.map((p) => `  - ${p}`).join('\n')}\n`);
      return 78; // EX_CONFIG
    }
    throw err;
  }
}
