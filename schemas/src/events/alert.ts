/**
 * `alert` v1: a detection finding produced by ingest's detect transform (issue 5). Not chained: an
 * alert is derived from chained evidence and names it by event id, so it can be recomputed from the
 * log. Published as JSON on `vigil.alerts.v1` (key = identity) and stored in the `alerts` table.
 *
 * `alert_id` is deterministic (rule, identity, dedupe key, first evidence): a redelivered batch
 * produces the same id, so the store collapses it and a consumer can drop the duplicate.
 */
import { Type, type Static } from '@sinclair/typebox';

export const AlertSeverity = Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('critical')]);
export type AlertSeverity = Static<typeof AlertSeverity>;

export const AlertEvent = Type.Object(
  {
    type: Type.Literal('alert'),
    version: Type.Literal(1),
    /** Same as alert_id: every event has an event_id. */
    event_id: Type.String({ minLength: 1 }),
    alert_id: Type.String({ minLength: 1 }),
    /** µs since epoch: the time of the event that completed the evidence (event time, not wall time). */
    time: Type.Integer({ minimum: 0 }),
    /** Detector and rule, e.g. `bulk_read.per_query`, `off_hours`, `overrides.self_approval`. */
    rule: Type.String({ minLength: 1 }),
    severity: AlertSeverity,
    /** The identity (token `sub`) the alert is about. */
    sub: Type.String(),
    groups: Type.Array(Type.String()),
    /** The session of the triggering event ('' for alerts about several sessions). */
    session_id: Type.String(),
    target_id: Type.String(),
    /** One line an analyst reads first; never statement parameters or secrets. */
    summary: Type.String(),
    /** Ids of the events (chained or query) that make the case. */
    evidence: Type.Array(Type.String(), { minItems: 1 }),
    /** Numbers behind the decision (observed, threshold, baseline…). */
    facts: Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Boolean()])),
    /** What the suppression window groups by (alerts with the same rule, sub and key within the window are one). */
    dedupe_key: Type.String(),
  },
  { additionalProperties: false, $id: 'vigil.alert.v1' },
);
export type AlertEvent = Static<typeof AlertEvent>;
