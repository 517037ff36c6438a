/**
 * Detection through the real gateway (issue 5, item 5): a sample of the generated scenarios
 * replayed as PostgreSQL client traffic through `vigil start` (tokens from its dev issuer, the local
 * PostgreSQL as target, tables created for the run), landing through the local log, the ingest
 * worker and chDB, read back with GET /api/alerts. Every detector in the sample fires on its
 * injected session and stays quiet on the benign twin — the same statements without the malicious
 * feature (usual size, usual address and client, a known table, few errors, short, inside working
 * hours, inside a change window). What the sample does about time: test/eval/gateway-plan.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { familyOf } from '../eval/score.ts';
import { runGatewaySample } from '../eval/gateway-sample.ts';
import { GATEWAY_FAMILIES } from '../eval/gateway-plan.ts';

test('gateway sample: each detector fires on its injected session and not on its benign twin', async () => {
  // A shorter real pause than eval:detect's (max_duration_s = 10 s); the twins last well under a second.
  const r = await runGatewaySample({ long_pause_s: 15 });
  const rulesOf = (sessionId: string) => r.alerts.filter((a) => a.session_id === sessionId).map((a) => a.rule);

  assert.deepEqual([...new Set(r.sessions.filter((s) => s.role === 'injected').map((s) => s.family))].sort(), [...GATEWAY_FAMILIES].sort());
  for (const family of GATEWAY_FAMILIES) {
    const injected = r.sessions.find((s) => s.role === 'injected' && s.family === family)!;
    const twin = r.sessions.find((s) => s.role === 'twin' && s.family === family)!;
    assert.ok(injected.session_id && twin.session_id && injected.session_id !== twin.session_id, `${family}: both sessions were ingested`);
    assert.ok(rulesOf(injected.session_id).some((rule) => familyOf(rule) === family), `${family} fires on its injected session (alerts: ${rulesOf(injected.session_id).join(', ') || 'none'})`);
    assert.deepEqual(rulesOf(twin.session_id), [], `${family}: the benign twin raises nothing`);
  }

  // What reached the detectors is what the clients did: the new source's address and application.
  const newSource = r.sessions.find((s) => s.role === 'injected' && s.family === 'new_source')!;
  const facts = r.alerts.filter((a) => a.session_id === newSource.session_id).map((a) => a.facts);
  assert.ok(facts.some((f) => f.addr === '127.51.100.7'), `new_source.addr names the client's address (${JSON.stringify(facts)})`);
  assert.ok(facts.some((f) => f.app === 'curl/8.5'), 'new_source.app names the client application');
  const privileged = r.alerts.find((a) => a.rule === 'privileged.outside_change_window')!;
  assert.equal(privileged.sub, r.sessions.find((s) => s.role === 'injected' && s.family === 'privileged')!.who.sub, 'only the identity outside the change window');

  // The history the baselines come from is benign and raised nothing.
  const history = new Set(r.sessions.filter((s) => s.role === 'history').map((s) => s.session_id));
  assert.equal(history.size, 36);
  assert.deepEqual(r.alerts.filter((a) => history.has(a.session_id)).map((a) => `${a.sub} ${a.rule}`), []);
  assert.equal(r.score.worstRecall, 1);
});
