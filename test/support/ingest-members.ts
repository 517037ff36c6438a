/**
 * Child process for the shared-baseline test: N ingest pipelines in this one process, each with its
 * own Kafka client and consumer-group member (same group), over one chDB store (chDB is bound to
 * one process per data path, so two `vigil ingest` processes cannot share it; a ClickHouse server
 * would be the shared store in production — docs/detection.md says why this stands in for it).
 *
 * argv: JSON { brokers, topic, group, chdb, members, detect, run }.
 * stdout, one JSON line each: {op:'ready'}; {op:'consumed', member, partition, keys: {key: n}} after
 * a batch was acknowledged (in ClickHouse, offsets about to be committed); {op:'stopped', stats}.
 * stdin: a line `stop` stops every member (in-flight batches finish, offsets commit) and exits.
 */
import { createInterface } from 'node:readline';
import { KafkaEventLog } from '@vigil/eventlog/kafka/index';
import type { BatchHandler, Consumer, ConsumerOptions, EventLog } from '@vigil/eventlog/types';
import { applyDdl, openStore, releaseStore } from '@vigil/ingest/store/client';
import { startIngest, type IngestHandle } from '@vigil/ingest';

interface Args {
  brokers: string[];
  topic: string;
  group: string;
  chdb: string;
  members: number;
  detect: Record<string, unknown>;
  run: string;
}

const args = JSON.parse(process.argv[2]!) as Args;
const say = (m: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(m)}\n`);

/** The member's log, reporting which records each acknowledged batch held (which member owned what). */
function observed(log: EventLog, member: number): EventLog {
  return {
    kind: log.kind,
    ensureTopics: (t) => log.ensureTopics(t),
    producer: () => log.producer(),
    close: () => log.close(),
    consumer(options: ConsumerOptions): Consumer {
      const inner = log.consumer(options);
      return {
        run: (handler: BatchHandler) =>
          inner.run(async (batch) => {
            await handler(batch);
            const keys: Record<string, number> = {};
            for (const r of batch.records) keys[r.key] = (keys[r.key] ?? 0) + 1;
            say({ op: 'consumed', member, partition: batch.partition, keys });
          }),
        stop: () => inner.stop(),
      };
    },
  };
}

const store = await openStore({ kind: 'chdb', path: args.chdb });
await applyDdl(store);
const logs: KafkaEventLog[] = [];
const members: IngestHandle[] = [];
for (let i = 0; i < args.members; i++) {
  const log = new KafkaEventLog({ brokers: args.brokers, client_id: `vigil-test-member-${args.run}-${i}`, fetch_max_wait_ms: 100, heartbeat_interval_ms: 500, session_timeout_ms: 10_000 });
  logs.push(log);
  members.push(
    await startIngest({
      config: { ingest: { group_id: args.group, topics: [args.topic], max_batch_rows: 200, detect: args.detect as never } },
      log: observed(log, i),
      store,
    }),
  );
}
say({ op: 'ready' });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() !== 'stop') continue;
  for (const m of members) await m.stop();
  say({ op: 'stopped', stats: members.map((m) => ({ events: m.stats.pipeline.events, alerts: m.stats.detect?.alerts, suppressed: m.stats.detect?.suppressed })) });
  for (const l of logs) await l.close();
  await releaseStore(store);
  process.exit(0);
}
