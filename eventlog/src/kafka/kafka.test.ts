/**
 * KafkaEventLog against the real broker (deploy/local/kafka/kafka.sh, via test/support/kafka.ts).
 * Every topic and group name is unique per run; every wait is bounded.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { kafkaBrokers } from '../../../test/support/kafka.ts';
import { LogError, type ConsumedRecord, type ConsumerBatch, type LogRecord } from '../types.ts';
import { KafkaEventLog, KafkaLogErrors, parseKafkaEventLogConfig, type KafkaLogSink } from './index.ts';

const RUN = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const name = (what: string) => `vigil.test.${what}.${RUN}`;

let brokers: string[];
const logs: KafkaEventLog[] = [];
const logLines: string[] = [];
/** Collects every log line so a test can prove no payload reached the logs. */
const captureSink: KafkaLogSink = {
  warn: (fields, msg) => logLines.push(JSON.stringify({ msg, ...fields })),
  error: (fields, msg) => logLines.push(JSON.stringify({ msg, ...fields })),
};

function openLog(extra: Record<string, unknown> = {}): KafkaEventLog {
  const log = new KafkaEventLog(
    { brokers, client_id: 'vigil-test', session_timeout_ms: 6000, heartbeat_interval_ms: 1000, redelivery_initial_ms: 50, ...extra },
    { logger: captureSink },
  );
  logs.push(log);
  return log;
}

async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `done()` holds, polling; rejects after `ms`. */
async function until(ms: number, what: string, done: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms}ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function committedOffsets(log: KafkaEventLog, groupId: string, topic: string): Promise<Map<number, string>> {
  const admin = await log.connectAdmin();
  const [res] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map(res.partitions.map((p) => [p.partition, p.offset]));
}

before(async () => {
  brokers = await kafkaBrokers();
});

after(async () => {
  await Promise.all(logs.map((l) => within(30_000, 'close event log', l.close())));
});

describe('config and error codes', () => {
  test('defaults apply, unknown keys and bad values are all reported, secrets are not echoed', () => {
    const c = parseKafkaEventLogConfig({ brokers: ['127.0.0.1:1'] });
    assert.equal(c.linger_ms, 5);
    assert.equal(c.max_batch_bytes, 1024 * 1024);
    assert.equal(c.partitions, 6);
    assert.equal(c.replication_factor, 1);
    assert.ok(Object.isFrozen(c));
    assert.throws(
      () =>
        parseKafkaEventLogConfig({
          brokers: [],
          lingerMs: 3,
          partitions: 0,
          sasl: { mechanism: 'plain', username: 'u', password: 'hunter2-secret', extra: 1 },
        }),
      (err: unknown) => {
        assert.ok(err instanceof LogError);
        assert.equal(err.code, 'LOG_ERR_KAFKA_CONFIG');
        assert.equal(err.retriable, false);
        for (const path of ['/brokers', '/lingerMs', '/partitions', '/sasl']) assert.match(err.message, new RegExp(path));
        assert.doesNotMatch(err.message, /hunter2/);
        return true;
      },
    );
  });

  test('error codes are unique, LOG_ERR_KAFKA_-prefixed and documented', () => {
    const codes = Object.keys(KafkaLogErrors);
    assert.equal(new Set(codes).size, codes.length);
    for (const [code, def] of Object.entries(KafkaLogErrors)) {
      assert.match(code, /^LOG_ERR_KAFKA_[A-Z_]+$/);
      assert.ok(def.description.length > 20, `${code} needs a description`);
      assert.equal(typeof def.retriable, 'boolean');
    }
  });
});

describe('KafkaEventLog on a real broker', { timeout: 240_000 }, () => {
  test('ensureTopics creates topics with the configured partition count and is idempotent', async () => {
    const log = openLog({ partitions: 3 });
    const topics = [name('ensure-a'), name('ensure-b')];
    await within(30_000, 'ensureTopics', log.ensureTopics(topics));
    await within(30_000, 'ensureTopics again', log.ensureTopics([...topics, topics[0]]));
    const admin = await log.connectAdmin();
    const meta = await admin.fetchTopicMetadata({ topics });
    assert.deepEqual(
      meta.topics.map((t) => [t.name, t.partitions.length]).sort(),
      topics.map((t) => [t, 3]).sort(),
    );
    // Another log with a different partition count leaves the existing topic as it is.
    await within(30_000, 'ensureTopics other config', openLog({ partitions: 5 }).ensureTopics([topics[0]]));
    const again = await admin.fetchTopicMetadata({ topics: [topics[0]] });
    assert.equal(again.topics[0].partitions.length, 3);
    // A mix of an existing topic and a new one: the new one is created, and has a leader for every
    // partition by the time the call returns.
    const fresh = name('ensure-c');
    await within(30_000, 'ensureTopics mixed', log.ensureTopics([topics[1], fresh]));
    const mixed = await admin.fetchTopicMetadata({ topics: [fresh] });
    assert.equal(mixed.topics[0].partitions.length, 3);
    assert.ok(mixed.topics[0].partitions.every((p) => p.leader >= 0), 'every partition of the new topic has a leader');
  });

  test('round trip keeps binary values, keys and headers exactly', async () => {
    const log = openLog();
    const topic = name('roundtrip');
    await log.ensureTopics([topic]);
    const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const sent: LogRecord[] = [
      { key: 'sess-α', value: allBytes, headers: { type: 'frame', dir: 'c2s', note: 'ünïcødé ✓' } },
      { key: 'sess-α', value: Buffer.alloc(0), headers: { type: 'empty' } },
      { key: 'sess-β', value: randomBytes(200_000) },
      { key: 'sess-β', value: Buffer.from([0, 0, 0, 0xff, 0xfe]), headers: {} },
    ];
    const producer = log.producer();
    await within(30_000, 'send', producer.send(topic, sent));

    const got: ConsumedRecord[] = [];
    const consumer = log.consumer({ groupId: name('roundtrip-g'), topics: [topic] });
    await consumer.run(async (b) => {
      got.push(...b.records);
    });
    await until(30_000, 'all records consumed', () => got.length >= sent.length);
    await consumer.stop();

    for (const key of ['sess-α', 'sess-β']) {
      const want = sent.filter((r) => r.key === key);
      const have = got.filter((r) => r.key === key).sort((a, b) => Number(BigInt(a.offset) - BigInt(b.offset)));
      assert.equal(have.length, want.length);
      for (let i = 0; i < want.length; i++) {
        assert.ok(Buffer.isBuffer(have[i].value));
        assert.ok(have[i].value.equals(want[i].value), `value ${key}#${i}`);
        assert.deepEqual(have[i].headers, want[i].headers ?? {});
        assert.equal(have[i].topic, topic);
        assert.ok(Math.abs(have[i].timestamp - Date.now()) < 120_000, 'timestamp is ms since epoch');
      }
    }
  });

  test('per-key order holds across 10,000 interleaved send() calls batched by linger', async () => {
    const KEYS = 20;
    const PER_KEY = 500;
    const log = openLog({ linger_ms: 5, max_batch_bytes: 64 * 1024 });
    const topic = name('order');
    await log.ensureTopics([topic]);
    const producer = log.producer();
    const sends: Promise<void>[] = [];
    for (let seq = 0; seq < PER_KEY; seq++) {
      for (let k = 0; k < KEYS; k++) {
        const value = Buffer.alloc(8);
        value.writeUInt32BE(k, 0);
        value.writeUInt32BE(seq, 4);
        sends.push(producer.send(topic, [{ key: `session-${k}`, value }]));
      }
      // Let the event loop run now and then so batches go out while sends keep coming.
      if (seq % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await within(60_000, 'all sends acked', Promise.all(sends));
    const stats = producer.stats();
    assert.equal(stats.sends, KEYS * PER_KEY);
    assert.ok(stats.batches < stats.sends / 10, `linger batching: ${stats.batches} batches for ${stats.sends} sends`);

    const next = new Map<number, number>();
    let total = 0;
    const violations: string[] = [];
    const consumer = log.consumer({ groupId: name('order-g'), topics: [topic], maxBatchRecords: 1000 });
    await consumer.run(async (b) => {
      for (const r of b.records) {
        const k = r.value.readUInt32BE(0);
        const seq = r.value.readUInt32BE(4);
        assert.equal(r.key, `session-${k}`);
        const want = next.get(k) ?? 0;
        if (seq !== want) violations.push(`key ${k}: got ${seq}, expected ${want}`);
        next.set(k, seq + 1);
        total++;
      }
    });
    await until(60_000, 'all records consumed', () => total >= KEYS * PER_KEY);
    await consumer.stop();
    assert.deepEqual(violations, []);
    assert.equal(total, KEYS * PER_KEY);
    for (let k = 0; k < KEYS; k++) assert.equal(next.get(k), PER_KEY);
  });

  test('a handler that rejects once gets the same batch again; offsets commit only after it resolves', async () => {
    const log = openLog();
    const topic = name('redeliver');
    const groupId = name('redeliver-g');
    await log.ensureTopics([topic]);
    const marker = `PAYLOAD-MARKER-${RUN}`;
    await log.producer().send(
      topic,
      Array.from({ length: 50 }, (_, i) => ({ key: 'one-session', value: Buffer.from(`${marker}-${i}`) })),
    );

    const calls: ConsumerBatch[] = [];
    let failed = false;
    let committedWhileFailing: Map<number, string> | null = null;
    const seen = new Set<string>();
    const consumer = log.consumer({ groupId, topics: [topic], maxBatchRecords: 7 });
    await consumer.run(async (b) => {
      calls.push(b);
      if (!failed) {
        failed = true;
        committedWhileFailing = await committedOffsets(log, groupId, topic);
        throw new Error(`handler failed on ${b.records[0].value.toString()}`);
      }
      for (const r of b.records) seen.add(`${r.partition}:${r.offset}`);
    });
    await until(30_000, 'all 50 records acknowledged', () => seen.size >= 50);
    // The last commit follows the last handler call; wait for it to land.
    await until(10_000, 'offset 50 committed', async () => {
      const c = await committedOffsets(log, groupId, topic);
      return [...c.values()].reduce((n, o) => n + Math.max(0, Number(o)), 0) === 50;
    });
    await consumer.stop();

    assert.ok(calls.length >= 2);
    assert.equal(calls[1].records[0].offset, calls[0].records[0].offset, 'the rejected batch came back');
    assert.deepEqual(
      calls[1].records.map((r) => r.offset),
      calls[0].records.map((r) => r.offset),
    );
    for (const c of calls) assert.ok(c.records.length <= 7, 'maxBatchRecords bounds every handler call');
    assert.ok(committedWhileFailing, 'the failing handler looked at the committed offsets');
    for (const o of (committedWhileFailing as Map<number, string>).values()) {
      assert.equal(o, '-1', 'nothing committed before the first handler resolved');
    }
    assert.equal(seen.size, 50);
    // The redelivery was logged, without the payload.
    assert.ok(logLines.some((l) => l.includes('batch handler rejected') && l.includes(topic)));
    assert.ok(!logLines.some((l) => l.includes(marker)), 'no record value in any log line');
  });

  test('a consumer killed after its handler resolved but before the commit: the next member gets the records', async () => {
    const log = openLog();
    const topic = name('crash');
    const groupId = name('crash-g');
    await log.ensureTopics([topic]);
    await log.producer().send(
      topic,
      Array.from({ length: 20 }, (_, i) => ({ key: 'sess', value: Buffer.from(`v${i}`) })),
    );

    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./testdata/crash-before-commit.ts', import.meta.url))],
      {
        env: { ...process.env, KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC: topic, KAFKA_GROUP: groupId },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exit = await within(
      60_000,
      'child consumer to handle a batch and die',
      new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('exit', (code, signal) => resolve({ code, signal })),
      ),
    ).catch((e: unknown) => {
      child.kill('SIGKILL');
      throw e;
    });
    assert.equal(exit.signal, 'SIGKILL', `child died by its own SIGKILL (stderr: ${err.slice(-2000)})`);
    const handled = (JSON.parse(out.trim().split('\n')[0]) as { handled: string[] }).handled;
    assert.ok(handled.length > 0);
    assert.equal(handled[0], '0');

    const committed = await committedOffsets(log, groupId, topic);
    assert.ok([...committed.values()].every((o) => o === '-1'), 'the killed member committed nothing');

    const got: ConsumedRecord[] = [];
    const consumer = log.consumer({ groupId, topics: [topic] });
    await consumer.run(async (b) => {
      got.push(...b.records);
    });
    // The dead member must first time out of the group (session_timeout_ms 6000).
    await until(60_000, 'the next member receives all 20 records', () => got.length >= 20);
    await consumer.stop();
    const offsets = got.map((r) => r.offset);
    for (const o of handled) assert.ok(offsets.includes(o), `offset ${o} redelivered`);
    assert.deepEqual(new Set(offsets).size, 20);
  });

  test('two consumers in one group split the partitions and see every record exactly once', async () => {
    const log = openLog({ partitions: 6 });
    const topic = name('shared');
    const groupId = name('shared-g');
    await log.ensureTopics([topic]);

    const seenBy = [new Map<string, number>(), new Map<string, number>()];
    const partitionsOf = [new Set<number>(), new Set<number>()];
    const consumers = [0, 1].map((i) => {
      const c = openLog().consumer({ groupId, topics: [topic] });
      return {
        c,
        run: () =>
          c.run(async (b) => {
            partitionsOf[i].add(b.partition);
            for (const r of b.records) {
              const id = `${r.partition}:${r.offset}`;
              seenBy[i].set(id, (seenBy[i].get(id) ?? 0) + 1);
            }
          }),
      };
    });
    await consumers[0].run();
    await consumers[1].run();
    // Produce only once the group is stable with both members, so no rebalance hits a batch.
    const admin = await log.connectAdmin();
    await until(60_000, 'group stable with 2 members', async () => {
      const { groups } = await admin.describeGroups([groupId]);
      return groups[0]?.state === 'Stable' && groups[0].members.length === 2;
    });
    await new Promise((r) => setTimeout(r, 1000));

    const TOTAL = 600;
    await log.producer().send(
      topic,
      Array.from({ length: TOTAL }, (_, i) => ({ key: `session-${i % 30}`, value: Buffer.from(String(i)) })),
    );
    const seenCount = () => new Set([...seenBy[0].keys(), ...seenBy[1].keys()]).size;
    await until(60_000, 'all records consumed by the group', () => seenCount() >= TOTAL);
    await Promise.all(consumers.map(({ c }) => c.stop()));

    assert.equal(seenCount(), TOTAL);
    for (const m of seenBy) for (const [id, n] of m) assert.equal(n, 1, `${id} delivered ${n} times`);
    const overlap = [...seenBy[0].keys()].filter((id) => seenBy[1].has(id));
    assert.deepEqual(overlap, [], 'no record went to both members');
    assert.ok(seenBy[0].size > 0 && seenBy[1].size > 0, 'both members received records');
    assert.ok([...partitionsOf[0]].every((p) => !partitionsOf[1].has(p)), 'partitions are not shared');
    const committed = await committedOffsets(log, groupId, topic);
    assert.equal([...committed.values()].reduce((n, o) => n + Number(o), 0), TOTAL, 'all offsets committed');
  });

  test('producer errors carry stable codes', async () => {
    const log = openLog();
    const producer = log.producer();
    await assert.rejects(producer.send('t', [{ key: 'k', value: 'not a buffer' as unknown as Buffer }]), {
      code: 'LOG_ERR_KAFKA_INVALID_RECORD',
      retriable: false,
    });
    await assert.rejects(producer.send('t', [{ key: 'k', value: Buffer.alloc(2 * 1024 * 1024) }]), {
      code: 'LOG_ERR_KAFKA_TOO_LARGE',
    });
    await producer.close();
    await assert.rejects(producer.send('t', [{ key: 'k', value: Buffer.alloc(1) }]), { code: 'LOG_ERR_KAFKA_CLOSED' });

    // Nothing listens on this port: connect fails, retriable.
    const dead = new KafkaEventLog({ brokers: ['127.0.0.1:1'], connection_timeout_ms: 200 }, { logger: captureSink });
    logs.push(dead);
    await assert.rejects(within(60_000, 'send to a dead broker', dead.producer().send('t', [{ key: 'k', value: Buffer.alloc(1) }])), (e: unknown) => {
      assert.ok(e instanceof LogError);
      assert.equal(e.code, 'LOG_ERR_KAFKA_CONNECT');
      assert.equal(e.retriable, true);
      return true;
    });
  });
});
