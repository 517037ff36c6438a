/**
 * The byte stream toward the client stays exact when the session switches from whole-chunk
 * forwarding to message-by-message handling in the middle of a large message (a blocked statement
 * pipelined while a 20 MB row is on its way): regression for a duplicated message head that made
 * the client's stream unparsable and the recording differ from it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPolicyHarness, RawPg, wire, until, type Harness, type PolicyHarness } from './testkit.ts';
import { MessageReader } from './codec.ts';

let ph: PolicyHarness;
let h: Harness;
before(async () => {
  ph = await startPolicyHarness('version: 1\nrules:\n  - id: agents-no-drop\n    match: { actor_kind: agent, features: { any: [drop] } }\n    block: true\n');
  h = ph.h;
});
after(async () => ph.close());

test('a blocked statement sent while a large result streams: the client gets every byte once, as recorded', async () => {
  const c = await RawPg.login(h.port, 'agent-x', await h.issuer.mint('agent-x', { actor_kind: 'agent' }));
  const sock = c.socket;
  sock.removeAllListeners('data');
  const chunks: Buffer[] = [];
  let sent = false;
  sock.on('data', (d: Buffer) => {
    chunks.push(d);
    if (!sent) {
      sent = true;
      sock.write(wire.query('DROP TABLE vigil_never_exists'));
    }
  });
  sock.write(wire.query(`SELECT repeat('x', 20000000)`));
  const types: string[] = [];
  await until(() => {
    const r = new MessageReader({ maxFrameBytes: 1 << 30 });
    types.length = 0;
    const err = r.push(Buffer.concat(chunks), (t) => types.push(String.fromCharCode(t)));
    assert.equal(err, undefined, 'the client stream parses');
    return types.filter((t) => t === 'Z').length >= 2;
  }, 20_000, 'two ReadyForQuery');
  assert.deepEqual(types, ['T', 'D', 'C', 'Z', 'E', 'Z']);
  await h.sink.drain();
  const sid = h.sessionsOf('agent-x')[0]!;
  const recorded = Buffer.concat(
    h.session(sid).events.filter((e: any) => e.type === 'frame' && e.direction === 's2c').map((e: any) => Buffer.from(e.data)),
  );
  assert.ok(recorded.subarray(recorded.length - Buffer.concat(chunks).length).equals(Buffer.concat(chunks)), 'recorded tail equals what the client received');
  c.close();
});
