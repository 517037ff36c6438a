#!/usr/bin/env node
/**
 * Compares the protocol versions kafkajs (the repo's pinned version) can speak with what a broker
 * accepts (its ApiVersions response), per API. Used to check a Kafka upgrade (e.g. 4.x, where
 * KIP-896 removed old request versions) before the tests hit it; findings are in docs/kafka.md.
 *
 *   node deploy/local/kafka/api-versions.mjs 127.0.0.1:19092
 *
 * Reads kafkajs internals (the request table and the cluster's negotiated versions): a
 * diagnostic, not something production code should do.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');
const requests = require('kafkajs/src/protocol/requests');
const apiKeys = require('kafkajs/src/protocol/requests/apiKeys');
const kafkajsVersion = require('kafkajs/package.json').version;

const broker = process.argv[2] ?? '127.0.0.1:19092';
const kafka = new Kafka({ clientId: 'api-versions', brokers: [broker], logLevel: logLevel.NOTHING });
const createCluster = Object.getOwnPropertySymbols(kafka)
  .map((s) => kafka[s])
  .find((v) => typeof v === 'function');
const cluster = createCluster({ metadataMaxAge: 60_000, allowAutoTopicCreation: false, maxInFlightRequests: 1 });
await cluster.connect();
const versions = cluster.brokerPool.versions; // { apiKey: { minVersion, maxVersion } }
await cluster.disconnect();

const rows = [];
for (const [name, key] of Object.entries(apiKeys)) {
  const defs = requests.requests?.[name] ?? requests[name];
  const client = (defs?.versions ?? []).map(Number);
  if (client.length === 0) continue; // kafkajs does not implement this API
  const server = versions[key];
  const usable = server ? client.filter((v) => v >= server.minVersion && v <= server.maxVersion) : [];
  rows.push({
    api: `${name}(${key})`,
    kafkajs: `${Math.min(...client)}-${Math.max(...client)}`,
    broker: server ? `${server.minVersion}-${server.maxVersion}` : 'absent',
    picks: usable.length ? String(Math.max(...usable)) : '-',
    status: usable.length ? 'ok' : server ? 'NO COMMON VERSION' : 'NOT OFFERED BY BROKER',
  });
}
console.log(`kafkajs ${kafkajsVersion} vs broker ${broker}`);
console.table(rows);
