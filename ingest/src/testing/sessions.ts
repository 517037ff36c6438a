/**
 * Recorded sessions for ingest tests and the bench: a `session.started`, PostgreSQL frames built
 * with the decoder fixtures' builders, and a `session.ended`, sealed and chained exactly as the
 * gateway's SessionRecorder does (schemas' SessionChain), as log records keyed by session id.
 */
import { SessionChain, type ChainInput } from '@vigil/schemas';
import type { LogRecord } from '@vigil/eventlog/types';
import type { Step } from '../transforms/decode/pg/fixtures/builders.ts';

export interface RecordedSession {
  session_id: string;
  records: LogRecord[];
  /** Number of frame events. */
  frames: number;
}

export interface SessionOptions {
  sub?: string;
  target_id?: string;
  t0_us?: number;
  /** Append session.started (default true) / session.ended (default true). */
  start?: boolean;
  end?: boolean;
}

export function recordSession(sessionId: string, steps: Step[], options: SessionOptions = {}): RecordedSession {
  const chain = new SessionChain(sessionId, { gateway_id: 'gw-test', gateway_version: '0.1.0' });
  let t = options.t0_us ?? 1_763_700_000_000_000;
  const records: LogRecord[] = [];
  const push = (input: ChainInput): void => {
    const r = chain.next({ ...input, time: t } as ChainInput);
    records.push(input.type === 'frame' ? { key: sessionId, value: r.bytes } : { key: sessionId, value: r.bytes, headers: { type: input.type } });
  };
  const counts = { bytes_c2s: 0, bytes_s2c: 0, messages_c2s: 0, messages_s2c: 0 };
  if (options.start !== false) {
    push({
      type: 'session.started', version: 1, sub: options.sub ?? 'alice', groups: ['dba'], issuer: 'http://127.0.0.1:8480/issuer',
      actor_kind: 'agent', client_addr: '127.0.0.1:50000', target_id: options.target_id ?? 'local-pg', protocol: 'postgres',
      target_addr: '127.0.0.1:5432', db_name: 'app', db_user: 'app_rw', tls: false, upstream_tls: false, client_app: 'psql',
    });
  }
  for (const st of steps) {
    t += st.after_us ?? 10;
    if (st.direction === 'c2s') {
      counts.bytes_c2s += st.data.length;
      counts.messages_c2s++;
    } else {
      counts.bytes_s2c += st.data.length;
      counts.messages_s2c++;
    }
    push(st.msg_type === undefined ? { type: 'frame', version: 1, direction: st.direction, data: st.data } : { type: 'frame', version: 1, direction: st.direction, msg_type: st.msg_type, data: st.data });
  }
  if (options.end !== false) {
    t += 10;
    push({ type: 'session.ended', version: 1, reason: 'client_closed', duration_us: t - (options.t0_us ?? 1_763_700_000_000_000), ...counts });
  }
  return { session_id: sessionId, records, frames: steps.length };
}
