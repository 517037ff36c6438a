/**
 * @vigil/schemas — the single source of truth for events: TypeBox JSON Schemas with inferred
 * types, one versioned schema per event type, the binary log codec and the per-session hash chain.
 */
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { FrameEvent } from './events/frame.ts';
import { AuthFailed, ProtocolRefused, SessionEnded, SessionStarted } from './events/session.ts';
import { QueryEvent } from './events/query.ts';
import { PolicyBlocked, PolicyLimit, PolicyLoaded, PolicyRejected } from './events/policy.ts';
import { ApprovalDecided, ApprovalOverride, ApprovalRefused, ApprovalRequested, ApprovalResolved } from './events/approval.ts';
import { MaskApplied } from './events/mask.ts';
import { RecordingViewed } from './events/audit.ts';
import { SshChannel, SshFile, SshRequest } from './events/ssh.ts';
import { AlertEvent } from './events/alert.ts';

export * from './envelope.ts';
export * from './events/frame.ts';
export * from './events/session.ts';
export * from './events/query.ts';
export * from './events/policy.ts';
export * from './events/approval.ts';
export * from './events/mask.ts';
export * from './events/audit.ts';
export * from './events/ssh.ts';
export * from './events/alert.ts';
export { canonicalJson } from './canonical.ts';
export { seal, decode, verifyRecord, verifyChain, CodecError, type Sealed, type ChainReport, type UnsealedEvent } from './codec.ts';
export { SessionChain, nowUs, type ChainInput, type ChainedRecord } from './chain.ts';
export { ChainVerifier, type SessionVerdict } from './verify.ts';

/** Events the gateway emits into a session's hash chain. */
export const ChainedEvent = Type.Union([FrameEvent, SessionStarted, SessionEnded, AuthFailed, ProtocolRefused, PolicyBlocked, PolicyLimit, PolicyLoaded, PolicyRejected, ApprovalRequested, ApprovalResolved, ApprovalRefused, MaskApplied, RecordingViewed, SshChannel, SshRequest, SshFile]);
export type ChainedEvent = Static<typeof ChainedEvent>;

/** Every versioned schema, keyed `type@version` (used by docs, fixtures and validators). */
export const schemas = {
  'frame@1': FrameEvent,
  'session.started@1': SessionStarted,
  'session.ended@1': SessionEnded,
  'auth.failed@1': AuthFailed,
  'protocol.refused@1': ProtocolRefused,
  'query@1': QueryEvent,
  'policy.blocked@1': PolicyBlocked,
  'policy.loaded@1': PolicyLoaded,
  'policy.rejected@1': PolicyRejected,
  'policy.limit@1': PolicyLimit,
  'approval.requested@1': ApprovalRequested,
  'approval.resolved@1': ApprovalResolved,
  'approval.decided@1': ApprovalDecided,
  'approval.override@1': ApprovalOverride,
  'approval.refused@1': ApprovalRefused,
  'mask.applied@1': MaskApplied,
  'recording.viewed@1': RecordingViewed,
  'ssh.channel@1': SshChannel,
  'ssh.request@1': SshRequest,
  'ssh.file@1': SshFile,
  'alert@1': AlertEvent,
} as const;
export type SchemaKey = keyof typeof schemas;

const compiled = new Map(Object.entries(schemas).map(([k, s]) => [k, TypeCompiler.Compile(s)]));

/** Validate an event against the schema of its type and version; returns error strings (empty = valid). */
export function validateEvent(event: { type: string; version: number }): string[] {
  const check = compiled.get(`${event.type}@${event.version}`);
  if (!check) return [`unknown event type/version ${event.type}@${event.version}`];
  return [...check.Errors(event)].map((e) => `${e.path || '/'}: ${e.message}`);
}
