/**
 * `vigil verify [--session ID] [--json] [--idle-ms 2000]`: read the whole event log (local, read-only
 * beside a running gateway; or Kafka, with a throwaway consumer group) and verify every session's
 * chain: seq gap-free from 0, prev_hash links, each hash over the stored bytes. Exit 0 when every
 * session verifies, 1 when any does not. Sessions without `session.ended` are reported as open
 * (live, or cut short by a gateway crash) — not a failure by themselves.
 */
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { ChainVerifier } from '@vigil/schemas';
import { Topics, type EventLog } from '@vigil/eventlog/types';
import { createEventLog } from '@vigil/eventlog';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import type { VigilConfig } from '../config.ts';

export async function verify(config: VigilConfig, argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      session: { type: 'string' },
      json: { type: 'boolean', default: false },
      'idle-ms': { type: 'string', default: '2000' },
    },
  });
  const idleMs = Number(values['idle-ms']);
  const log: EventLog =
    config.log.kind === 'local' ? await LocalEventLog.open({ ...config.log.local, read_only: true }) : await createEventLog(config.log);
  const verifier = new ChainVerifier();
  let records = 0;
  let lastProgress = Date.now();
  const consumer = log.consumer({ groupId: `vigil-verify-${randomUUID()}`, topics: [Topics.frames], fromBeginning: true });
  let idle: NodeJS.Timeout | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(finish, idleMs);
  };
  armIdle();
  try {
    await consumer.run(async (batch) => {
      for (const r of batch.records) {
        if (values.session && r.key !== values.session) continue;
        verifier.push(r.value);
      }
      records += batch.records.length;
      if (Date.now() - lastProgress > 5000) {
        lastProgress = Date.now();
        process.stderr.write(`vigil verify: ${records} records read\n`);
      }
      armIdle();
    });
    await finished;
  } finally {
    clearTimeout(idle);
    await consumer.stop();
    await log.close();
  }

  const verdicts = verifier.verdicts();
  const bad = verdicts.filter((v) => v.problem);
  const open = verdicts.filter((v) => !v.problem && !v.ended);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ records, undecodable: verifier.undecodable, sessions: verdicts }, null, 2)}\n`);
  } else {
    for (const v of bad) process.stdout.write(`FAIL ${v.session_id}: ${v.problem}\n`);
    for (const v of open) process.stdout.write(`open ${v.session_id}: ${v.events} events, no session.ended (live or cut short)\n`);
    process.stdout.write(
      `${verdicts.length} sessions, ${records} records: ${verdicts.length - bad.length} verified, ${bad.length} failed, ${open.length} open` +
        (verifier.undecodable ? `, ${verifier.undecodable} undecodable records` : '') +
        '\n',
    );
  }
  return bad.length > 0 || verifier.undecodable > 0 ? 1 : 0;
}
