/**
 * Client startup parameters: presentation settings are forwarded; anything else (notably
 * `options=-c …`, which could switch off audit triggers on the target) is dropped and named in
 * session.started, so the target session is only changed through the recorded stream.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, connect, type Harness } from './testkit.ts';

let h: Harness;
after(async () => h?.close());

test('options=-c … is not forwarded; forwarded and dropped parameters are recorded in session.started', async () => {
  h = await startHarness();
  const c = await connect(h, 'alice', { options: '-c session_replication_role=replica -c log_statement=none', application_name: 'probe' } as never);
  const r = await c.query("select current_setting('session_replication_role') as srr, current_setting('application_name') as app");
  assert.equal(r.rows[0].srr, 'origin', 'the target session kept its audit-relevant setting');
  assert.equal(r.rows[0].app, 'probe', 'presentation parameters are forwarded');
  await c.end();
  const [sid] = h.sessionsOf('alice');
  const started = h.session(sid!).events.find((e) => e.type === 'session.started') as { dropped_params?: string[]; client_params?: Record<string, string> };
  assert.deepEqual(started.dropped_params, ['options']);
  assert.equal(started.client_params?.application_name, 'probe');
});
