/**
 * The thread bridge over a real local log: batches cross a MessageChannel with their bytes intact,
 * offsets are committed only after the far side acknowledged, a rejected batch comes back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LocalEventLog } from '../local/index.ts';
import { serveEventLog, PortEventLog } from './index.ts';

test('batches cross the port intact; commit only after ack; a rejection redelivers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-port-'));
  const log = await LocalEventLog.open({ dir });
  await log.ensureTopics(['t']);
  const values = Array.from({ length: 50 }, (_, i) => randomBytes(10 + i));
  await log.producer().send('t', values.map((value, i) => ({ key: `k${i % 3}`, value, headers: { n: String(i) } })));

  const { port1, port2 } = new MessageChannel();
  const served = serveEventLog(log, port1);
  const remote = new PortEventLog(port2);
  const seen: Buffer[] = [];
  let failedOnce = false;
  const consumer = remote.consumer({ groupId: 'g', topics: ['t'], maxBatchRecords: 20 });
  const done = new Promise<void>((resolve) => {
    void consumer.run(async (batch) => {
      if (!failedOnce && seen.length >= 20) {
        failedOnce = true;
        throw Object.assign(new Error('transient'), { retriable: true });
      }
      assert.ok(batch.records.length <= 20);
      // While this handler runs, the owner has committed nothing past what was acknowledged before.
      const committed = await log.committedOffset('g', 't');
      assert.equal(Number(committed ?? 0), seen.length, 'no commit ahead of the acknowledgement');
      for (const r of batch.records) {
        assert.equal(r.headers?.n, String(seen.length));
        seen.push(Buffer.from(r.value));
      }
      if (seen.length === values.length) resolve();
    });
  });
  await done;
  assert.ok(failedOnce, 'one batch was rejected');
  assert.equal(seen.length, values.length, 'the rejected batch came back, nothing twice');
  seen.forEach((v, i) => assert.ok(v.equals(values[i]!), `record ${i} bytes`));
  await consumer.stop();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await log.committedOffset('g', 't'), String(values.length), 'committed through the last acknowledged record');
  assert.throws(() => remote.producer(), /only consumes/);
  await served.close();
  await log.close();
});
