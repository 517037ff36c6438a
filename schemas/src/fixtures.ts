/**
 * Golden fixture inputs: one deterministic event per schema. `fixtures/*.json` hold the sealed
 * bytes and hashes these produce; the test fails if the wire format or canonicalisation drifts.
 * Regenerate deliberately with `node --import tsx schemas/src/fixtures.ts --write` (and bump
 * FORMAT_VERSION or the event's version when the change is not backward compatible).
 */
import { writeFileSync } from 'node:fs';
import { GENESIS_HASH } from './envelope.ts';
import type { UnsealedEvent } from './codec.ts';
import { seal } from './codec.ts';

const gw = { gateway_id: 'gw-test', gateway_version: '0.1.0' };
const base = { session_id: 'sess-0001', time: 1_763_700_000_000_000, ...gw };

/** A chain of three events: start, one frame each way is enough to pin the format. */
export function fixtureChain(): UnsealedEvent[] {
  return [
    {
      type: 'session.started', version: 1, event_id: 'evt-0', seq: 0, prev_hash: GENESIS_HASH, ...base,
      sub: 'alice', groups: ['dba'], issuer: 'http://127.0.0.1:8480/issuer', actor_kind: 'human',
      client_addr: '127.0.0.1:50000', target_id: 'local-pg', protocol: 'postgres',
      target_addr: '127.0.0.1:5432', db_name: 'postgres', db_user: 'postgres', tls: false, upstream_tls: false,
    },
    {
      type: 'frame', version: 1, event_id: 'evt-1', seq: 1, prev_hash: '', ...base, direction: 'c2s', msg_type: 'Q',
      data: Buffer.from('5100000012' + Buffer.from('select 1;\0').toString('hex'), 'hex'),
    },
    {
      type: 'session.ended', version: 1, event_id: 'evt-2', seq: 2, prev_hash: '', ...base, reason: 'client_closed',
      duration_us: 1500, bytes_c2s: 18, bytes_s2c: 0, messages_c2s: 1, messages_s2c: 0,
    },
  ];
}

/** Seal the fixture chain, linking prev_hash as the gateway would. */
export function sealFixtureChain(): { hash: string; hex: string }[] {
  let prev = GENESIS_HASH;
  return fixtureChain().map((e) => {
    const sealed = seal({ ...e, prev_hash: prev } as UnsealedEvent);
    prev = sealed.hash;
    return { hash: sealed.hash, hex: sealed.bytes.toString('hex') };
  });
}

if (process.argv.includes('--write')) {
  const out = new URL('../fixtures/chain.v1.json', import.meta.url);
  writeFileSync(out, JSON.stringify(sealFixtureChain(), null, 2) + '\n');
  console.log(`wrote ${out.pathname}`);
}
