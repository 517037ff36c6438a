/** Masking events, emitted by the gateway in the session's chain. */
import { Type, type Static } from '@sinclair/typebox';
import { BaseFields } from '../envelope.ts';

const Strategy = Type.Union([Type.Literal('redact'), Type.Literal('partial'), Type.Literal('hash'), Type.Literal('null')]);

/**
 * `mask.applied` v1: values of one result (rows, COPY data, an error or notice) were masked before
 * they reached the client. Counts only — never a value, masked or not. Follows, in the chain, the
 * result's last s2c frame (CommandComplete, PortalSuspended, the error).
 */
export const MaskApplied = Type.Object(
  {
    type: Type.Literal('mask.applied'),
    version: Type.Literal(1),
    ...BaseFields,
    /** Which protocol carried the statement: Query ('simple') or Parse/Bind/Execute ('extended'). */
    protocol_kind: Type.Union([Type.Literal('simple'), Type.Literal('extended')]),
    /** Parse-tree node of the statement (SelectStmt, CopyStmt, FetchStmt, …) or 'unknown'. */
    statement_kind: Type.String(),
    /** Rows (DataRow or COPY rows) that went through the masker. */
    rows: Type.Integer({ minimum: 0 }),
    /** Every mask rule that applied to the statement. */
    rule_ids: Type.Array(Type.String()),
    /** Columns masked by a column rule (or as undecidable), with the number of values masked. */
    columns: Type.Array(
      Type.Object(
        {
          /** 0-based position in the result. */
          index: Type.Integer({ minimum: 0 }),
          /** The result column's name as the client saw it. */
          name: Type.String(),
          /** The masked source column (`schema.table.column`) that decided it, or 'undecidable'. */
          source: Type.String(),
          strategy: Strategy,
          rule_id: Type.String(),
          count: Type.Integer({ minimum: 0 }),
        },
        { additionalProperties: false },
      ),
    ),
    /** Items found by value detectors, per detector. */
    detectors: Type.Array(
      Type.Object(
        {
          detector: Type.String(),
          strategy: Strategy,
          rule_id: Type.String(),
          count: Type.Integer({ minimum: 0 }),
        },
        { additionalProperties: false },
      ),
    ),
    /** An error or notice text was scrubbed because the statement reads masked columns. */
    message_scrubbed: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, $id: 'vigil.mask.applied.v1' },
);
export type MaskApplied = Static<typeof MaskApplied>;
