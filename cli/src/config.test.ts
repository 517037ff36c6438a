import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, ConfigError, loadConfig } from './config.ts';

const target = { id: 'local-pg', protocol: 'postgres', host: '127.0.0.1', port: 5432, database: 'postgres', user: 'postgres' };

test('the shipped sample config loads: embedded, local log and chDB under data_dir, dev issuer', () => {
  const c = loadConfig({ file: 'deploy/config/vigil.yaml', env: {} });
  assert.equal(c.mode, 'embedded');
  assert.equal(c.log.kind, 'local');
  assert.equal(c.store.kind, 'chdb');
  assert.ok(c.dev_issuer, 'dev issuer on without an identity section');
  assert.equal(c.identity.issuer, 'http://127.0.0.1:8480');
  assert.equal(c.gateway.gateway.postgres.listen_port, 15432);
  assert.equal(c.gateway.targets[0]!.id, 'local-pg');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.gateway.targets));
});

test('environment overrides the file, and the file overrides defaults', () => {
  const c = parseConfig({ targets: [target], data_dir: '/tmp/from-file' }, 'inline', {
    VIGIL_DATA_DIR: '/tmp/from-env',
    VIGIL_CLICKHOUSE_URL: 'http://127.0.0.1:8123',
    VIGIL_KAFKA_BROKERS: '127.0.0.1:19092,127.0.0.1:19093',
  });
  assert.equal(c.data_dir, '/tmp/from-env');
  assert.deepEqual(c.store, { kind: 'server', url: 'http://127.0.0.1:8123', database: undefined, username: undefined, password: undefined });
  assert.equal(c.log.kind, 'kafka');
  assert.deepEqual(c.log.kind === 'kafka' && c.log.kafka.brokers, ['127.0.0.1:19092', '127.0.0.1:19093']);
});

test('every problem of every section is reported at once; unknown keys are refused', () => {
  try {
    parseConfig({ bogus: 1, targets: [{ id: 'x' }] }, 'inline', {});
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.ok(err.problems.some((p) => p.includes('bogus')), err.problems.join('\n'));
  }
  try {
    parseConfig({ targets: [{ id: 'x', protocol: 'postgres' }], api: { listen_port: 'no' }, log: { kind: 'local', local: { fsync: 'sometimes' } } }, 'inline', {});
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const text = err.problems.join('\n');
    assert.match(text, /^api:/m);
    assert.match(text, /^gateway:/m);
    assert.match(text, /^log\.local:/m);
  }
});

test('distributed mode needs Kafka; a frame larger than a log record is refused, the default follows the log', () => {
  assert.throws(() => parseConfig({ mode: 'distributed', targets: [target] }, 'inline', {}), /mode distributed needs log.kind kafka/);
  const kafka = parseConfig({ targets: [target], log: { kind: 'kafka', kafka: { brokers: ['127.0.0.1:1'] } } }, 'inline', {});
  assert.ok(kafka.gateway.gateway.postgres.max_frame_bytes < 1024 * 1024, 'default frame bound follows Kafka max_batch_bytes');
  assert.throws(
    () => parseConfig({ targets: [target], gateway: { postgres: { max_frame_bytes: 32 * 1024 * 1024 } } }, 'inline', {}),
    /max_frame_bytes .* exceeds what one event-log record holds/,
  );
});

test('the distributed sample loads: Kafka with a gateway spool, ClickHouse server', () => {
  const c = loadConfig({ file: 'deploy/config/vigil.distributed.yaml', env: { VIGIL_KAFKA_BROKERS: '10.0.0.1:9092' } });
  assert.equal(c.mode, 'distributed');
  assert.equal(c.log.kind, 'kafka');
  assert.ok(c.log.kind === 'kafka' && c.log.spool, 'spool configured');
  assert.deepEqual(c.log.kind === 'kafka' && c.log.kafka.brokers, ['10.0.0.1:9092']);
  assert.equal(c.store.kind, 'server');
});
