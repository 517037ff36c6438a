/**
 * The Kafka broker for tests. `VIGIL_TEST_KAFKA_BROKERS` (comma-separated) points at an existing
 * broker; otherwise the project's broker is started (deploy/local/kafka/kafka.sh start is
 * idempotent and serialised by a lock, so parallel test files may all call this).
 *
 * If the broker cannot be started this throws: a test that needs Kafka fails, it never skips.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../deploy/local/kafka/kafka.sh', import.meta.url));
/** First start may resolve jars from Maven Central; later starts take a few seconds. */
const START_TIMEOUT_MS = 10 * 60_000;

let started: Promise<string[]> | null = null;

export async function kafkaBrokers(): Promise<string[]> {
  const fromEnv = process.env.VIGIL_TEST_KAFKA_BROKERS?.trim();
  if (fromEnv) {
    const brokers = fromEnv.split(',').map((b) => b.trim()).filter((b) => b.length > 0);
    if (brokers.length === 0) throw new Error('VIGIL_TEST_KAFKA_BROKERS is set but lists no broker');
    return brokers;
  }
  started ??= startBroker();
  return started;
}

function startBroker(): Promise<string[]> {
  const port = process.env.VIGIL_KAFKA_PORT ?? '19092';
  return new Promise((resolve, reject) => {
    execFile('bash', [SCRIPT, 'start'], { timeout: START_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        started = null;
        reject(new Error(`Kafka broker did not start (${SCRIPT} start): ${err.message}\n${stdout}${stderr}`));
        return;
      }
      resolve([`127.0.0.1:${port}`]);
    });
  });
}
