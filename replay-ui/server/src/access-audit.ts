/**
 * Access audit: every served recording (replay, live view, export) becomes a `recording.viewed`
 * event in this API process's own hash chain on the event log (schemas/src/events/audit.ts); every
 * approval decision the API refuses, an `approval.refused` in the same chain.
 *
 * Fail closed: a recording is served only while the audit trail can take the view. If the log has
 * failed for good (the sink latched a non-retriable error) the API answers 503 instead of serving
 * an unaudited view. Retriable trouble (backpressure) does not block: the sink keeps the event and
 * retries, like the gateway's recording.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { VerifiedIdentity } from '@vigil/identity/types';
import { EventSink, SessionRecorder } from '@vigil/gateway/recorder/index';
import type { Producer } from '@vigil/eventlog';
import { Topics } from '@vigil/eventlog';
import type { RecordingViewed } from '@vigil/schemas';
import { apiError } from './errors.ts';

export interface ViewFacts {
  identity: VerifiedIdentity;
  viewed_session_id: string;
  view: RecordingViewed['view'];
  route: string;
  client_addr: string;
}

export interface RefusalFacts {
  identity: VerifiedIdentity;
  client_addr: string;
  approval_id: string;
  request_session_id: string;
  requester: string;
  decision: 'approve' | 'deny';
  override?: 'force' | 'break_glass';
  code: string;
  message: string;
}

export interface AccessAudit {
  /** Throws API_ERR_AUDIT_UNAVAILABLE when the view cannot be recorded (do not serve it then). */
  assertAvailable(): void;
  recordView(facts: ViewFacts): void;
  /** A decision the API refused: `approval.refused` in the same chain (detection watches self-approval attempts). */
  recordRefusal(facts: RefusalFacts): void;
  close(): Promise<void>;
}

export function createAccessAudit(producer: Producer, options: { api_id?: string; version: string }): AccessAudit {
  const sink = new EventSink(producer, { topic: Topics.frames, high_water_bytes: 4 * 1024 * 1024, low_water_bytes: 1024 * 1024, retry_backoff_ms: 200 });
  const apiId = options.api_id ?? `api@${hostname()}`;
  const chain = new SessionRecorder(sink, `api:${apiId}:${randomUUID()}`, { gateway_id: apiId, gateway_version: options.version });
  return {
    assertAvailable() {
      if (sink.failure) throw apiError('API_ERR_AUDIT_UNAVAILABLE', 'the access audit trail is unavailable, so recordings are not served');
    },
    recordView(f) {
      this.assertAvailable();
      chain.event({
        type: 'recording.viewed',
        version: 1,
        sub: f.identity.sub,
        groups: f.identity.groups,
        issuer: f.identity.issuer,
        actor_kind: f.identity.actor_kind,
        client_addr: f.client_addr,
        roles: [...f.identity.roles],
        viewed_session_id: f.viewed_session_id,
        view: f.view,
        route: f.route,
      });
    },
    recordRefusal(f) {
      chain.event({
        type: 'approval.refused',
        version: 1,
        sub: f.identity.sub,
        groups: f.identity.groups,
        issuer: f.identity.issuer,
        actor_kind: f.identity.actor_kind,
        client_addr: f.client_addr,
        approval_id: f.approval_id,
        request_session_id: f.request_session_id,
        requester: f.requester,
        decision: f.decision,
        ...(f.override ? { override: f.override } : {}),
        code: f.code,
        message: f.message,
      });
    },
    async close() {
      await sink.drain();
    },
  };
}
