/**
 * A message that straddles the PasswordMessage (client pipelines its first query behind the token,
 * and TCP splits it): the target must receive exactly the bytes that are recorded. Regression for
 * a bug where the bytes read before relaying began were recorded but never forwarded — the target
 * then parsed the tail as a message of its own, so a hidden statement ran while the recording
 * showed a harmless one.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, RawPg, wire, sleep, until, type Harness } from './testkit.ts';

let h: Harness;
after(async () => h?.close());

function frameQuery(body: Buffer): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out[0] = 0x51;
  out.writeUInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

const text = (m: Buffer) => m.subarray(5).toString('latin1');

async function sendSplit(c: RawPg, token: string, message: Buffer, split: number): Promise<void> {
  c.send(Buffer.concat([wire.password(token), message.subarray(0, split)]));
  await sleep(200);
  c.send(message.subarray(split));
}

test('an innocent query split across the auth boundary runs once, as recorded', async () => {
  h = await startHarness();
  const c = await RawPg.open(h.port);
  c.send(wire.startup({ user: 'alice', database: 'main' }));
  await c.next();
  const q = wire.query("select 'straddled' as x");
  await sendSplit(c, await h.issuer.mint('alice'), q, 7);
  await until(() => c.messages.filter((m) => m[0] === 0x5a).length >= 2, 5000, 'two ReadyForQuery');
  assert.ok(c.messages.some((m) => m[0] === 0x44 && text(m).includes('straddled')), 'the query returned its row');
  assert.ok(!c.messages.some((m) => m[0] === 0x45), 'no error');
  const [sid] = h.sessionsOf('alice');
  const c2s = h.session(sid!).events.filter((e: any) => e.type === 'frame' && e.direction === 'c2s') as any[];
  assert.ok(Buffer.from(c2s[0].data).equals(q), 'recorded exactly the query');
  c.close();
});

test('a statement hidden in the tail of a straddling message is not executed', async () => {
  const c = await RawPg.open(h.port);
  c.send(wire.startup({ user: 'bob', database: 'main' }));
  await c.next();
  const prefix = Buffer.from('select 1 --');
  const outer = frameQuery(Buffer.concat([prefix, wire.query("select 'HIDDEN-RAN' as x")]));
  await sendSplit(c, await h.issuer.mint('bob'), outer, 5 + prefix.length);
  await until(() => c.messages.filter((m) => m[0] === 0x5a).length >= 2, 5000, 'two ReadyForQuery');
  assert.ok(!c.messages.some((m) => text(m).includes('HIDDEN-RAN')), 'the hidden statement never ran');
  assert.ok(c.messages.some((m) => m[0] === 0x45), 'the target refused the malformed message it really got');
  const [sid] = h.sessionsOf('bob');
  const c2s = h.session(sid!).events.filter((e: any) => e.type === 'frame' && e.direction === 'c2s') as any[];
  assert.ok(Buffer.from(c2s[0].data).equals(outer), 'the recording holds the message the target received');
  c.close();
});

test('a client that closes in the middle of a message: the bytes it sent are recorded as a partial frame', async () => {
  const c = await RawPg.open(h.port);
  c.send(wire.startup({ user: 'carol', database: 'main' }));
  await c.next();
  c.send(wire.password(await h.issuer.mint('carol')));
  await until(() => c.messages.some((m) => m[0] === 0x5a), 5000, 'ReadyForQuery');
  const q = wire.query("select 'never finished'");
  c.send(q.subarray(0, 9));
  await sleep(200);
  c.close();
  const [sid] = h.sessionsOf('carol');
  const events = await until(() => {
    const e = h.session(sid!).events;
    return e.at(-1)?.type === 'session.ended' ? e : undefined;
  }, 5000, 'session.ended');
  const partial = events.filter((e: any) => e.type === 'frame' && e.msg_type === 'partial') as any[];
  assert.equal(partial.length, 1);
  assert.equal(partial[0].direction, 'c2s');
  assert.ok(Buffer.from(partial[0].data).equals(q.subarray(0, 9)), 'exactly the bytes that crossed');
  assert.equal(h.session(sid!).chainOk, true);
});
