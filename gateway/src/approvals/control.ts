/**
 * Records of the control topic `vigil.approvals.v1`. Decisions (`approval.decided`,
 * `approval.override`) are canonical JSON written by the API; the mirrors of `approval.requested` /
 * `approval.resolved` are the sealed chain records themselves (codec.ts), byte for byte what the
 * session's chain holds. The record header `type` says which; `enc: json` marks the JSON ones.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import {
  ApprovalDecided,
  ApprovalOverride,
  canonicalJson,
  decode,
  type ApprovalRequested,
  type ApprovalResolved,
} from '@vigil/schemas';
import type { LogRecord } from '@vigil/eventlog';

const checkDecided = TypeCompiler.Compile(ApprovalDecided);
const checkOverride = TypeCompiler.Compile(ApprovalOverride);

export type DecisionRecord = ApprovalDecided | ApprovalOverride;
export type ControlEvent = DecisionRecord | ApprovalRequested | ApprovalResolved;

/** A decision as a log record (key: approval id, so a request's records stay ordered). */
export function encodeDecision(d: DecisionRecord): LogRecord {
  return { key: d.approval_id, value: Buffer.from(canonicalJson(d), 'utf8'), headers: { type: d.type, enc: 'json' } };
}

/** A JSON decision, validated; undefined when it is not one. */
export function decodeControl(value: Buffer): DecisionRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch {
    return undefined;
  }
  if (checkDecided.Check(parsed)) return parsed;
  if (checkOverride.Check(parsed)) return parsed;
  return undefined;
}

/** Any control record: a JSON decision or a sealed mirror. Undefined when it is neither. */
export function decodeControlRecord(value: Buffer, headers: Record<string, string> | undefined): ControlEvent | undefined {
  if (headers?.enc === 'json') return decodeControl(value);
  try {
    const event = decode(value);
    if (event.type === 'approval.requested' || event.type === 'approval.resolved') return event as unknown as ControlEvent;
  } catch {
    return undefined;
  }
  return undefined;
}
