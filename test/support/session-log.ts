/**
 * Reading what the gateway recorded, for end-to-end assertions: collect chained events per session
 * from an event log (local or Kafka), verify chains, and compare recorded frames with what a tee
 * saw on the wire.
 */
import assert from 'node:assert/strict';
import { decode, verifyChain, type ChainedEvent } from '@vigil/schemas';
import type { EventLog } from '@vigil/eventlog/types';
import { Topics } from '@vigil/eventlog/types';
import type { TeeConnection } from './tee.ts';

export interface RecordedSession {
  id: string;
  records: Buffer[];
  events: ChainedEvent[];
}

/**
 * Consume the frames topic with a throwaway group until `done(sessions)` says everything expected
 * has arrived (or the timeout passes).
 */
export async function collectSessions(
  log: EventLog,
  done: (sessions: Map<string, RecordedSession>) => boolean,
  timeoutMs = 60_000,
): Promise<Map<string, RecordedSession>> {
  const sessions = new Map<string, RecordedSession>();
  const consumer = log.consumer({ groupId: `test-collect-${process.pid}-${Date.now()}`, topics: [Topics.frames], fromBeginning: true });
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  await consumer.run(async (batch) => {
    for (const r of batch.records) {
      const event = decode(r.value);
      let s = sessions.get(event.session_id);
      if (!s) sessions.set(event.session_id, (s = { id: event.session_id, records: [], events: [] }));
      s.records.push(r.value);
      s.events.push(event);
    }
    if (done(sessions)) finish();
  });
  const timer = setTimeout(finish, timeoutMs);
  await finished;
  clearTimeout(timer);
  await consumer.stop();
  return sessions;
}

/** Sessions that have ended (their last event is session.ended). */
export function ended(s: RecordedSession): boolean {
  return s.events.at(-1)?.type === 'session.ended';
}

export function startedOf(s: RecordedSession): Extract<ChainedEvent, { type: 'session.started' }> | undefined {
  return s.events.find((e) => e.type === 'session.started') as Extract<ChainedEvent, { type: 'session.started' }> | undefined;
}

/** The recorded frame bytes of one direction, concatenated in seq order. */
export function recordedStream(s: RecordedSession, direction: 'c2s' | 's2c'): Buffer {
  return Buffer.concat(
    s.events.filter((e): e is Extract<ChainedEvent, { type: 'frame' }> => e.type === 'frame' && e.direction === direction).map((e) => e.data),
  );
}

/**
 * What the client sent/received after authentication, from the tee's raw bytes: c2s without the
 * startup phase (optional SSLRequest/GSSENCRequest, StartupMessage) and the PasswordMessage; s2c
 * without the single-byte SSL answers and the AuthenticationCleartextPassword request.
 */
export function postAuthStreams(conn: TeeConnection): { c2s: Buffer; s2c: Buffer } {
  const c2s = Buffer.concat(conn.c2s);
  const s2c = Buffer.concat(conn.s2c);
  let i = 0;
  let negotiations = 0;
  for (;;) {
    const len = c2s.readUInt32BE(i);
    const code = c2s.readUInt32BE(i + 4);
    i += len;
    if (code === 80877103 || code === 80877104) {
      negotiations++;
      continue; // SSLRequest / GSSENCRequest: the real startup follows
    }
    break; // StartupMessage
  }
  assert.equal(c2s[i], 0x70, 'expected PasswordMessage after startup');
  i += 1 + c2s.readUInt32BE(i + 1);
  const j = negotiations + 9; // 'N' per negotiation, then R(len 8, code 3)
  assert.equal(s2c[negotiations], 0x52, 'expected AuthenticationCleartextPassword');
  return { c2s: c2s.subarray(i), s2c: s2c.subarray(j) };
}

/** Assert the session's chain verifies and its frames equal the tee's post-auth bytes. */
export function assertExact(s: RecordedSession, conn: TeeConnection): void {
  const report = verifyChain(s.records);
  assert.equal(report.ok, true, `session ${s.id}: ${report.problem}`);
  const wire = postAuthStreams(conn);
  const c2s = recordedStream(s, 'c2s');
  const s2c = recordedStream(s, 's2c');
  assert.equal(c2s.length, wire.c2s.length, `session ${s.id}: c2s length`);
  assert.ok(c2s.equals(wire.c2s), `session ${s.id}: c2s bytes differ`);
  assert.equal(s2c.length, wire.s2c.length, `session ${s.id}: s2c length`);
  assert.ok(s2c.equals(wire.s2c), `session ${s.id}: s2c bytes differ`);
}
