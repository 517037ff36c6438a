/** `query` v1: a decoded PostgreSQL statement execution, produced by ingest from frame events. */
import { Type, type Static } from '@sinclair/typebox';

export const QueryEvent = Type.Object(
  {
    type: Type.Literal('query'),
    version: Type.Literal(1),
    event_id: Type.String(),
    session_id: Type.String(),
    /** seq of the frame that carried the statement (Query or Execute): unique per session. */
    seq: Type.Integer({ minimum: 0 }),
    /** seq of the frame that completed it (CommandComplete/ErrorResponse/…). */
    end_seq: Type.Integer({ minimum: 0 }),
    time: Type.Integer({ minimum: 0, description: 'µs, when the statement was sent' }),
    duration_us: Type.Integer({ minimum: 0 }),
    protocol_kind: Type.Union([Type.Literal('simple'), Type.Literal('extended')]),
    statement: Type.String(),
    /** Prepared statement and portal names (extended protocol). */
    statement_name: Type.Optional(Type.String()),
    /** Bind parameters as text (binary-format ones as \\x hex). Masking applies before storage. */
    params: Type.Array(Type.Union([Type.String(), Type.Null()])),
    command_tag: Type.Optional(Type.String()),
    rows: Type.Integer({ minimum: 0 }),
    /** Bytes of result data (DataRow/CopyData toward the client). */
    bytes: Type.Integer({ minimum: 0 }),
    sqlstate: Type.Optional(Type.String()),
    error: Type.Optional(Type.String()),
  },
  { additionalProperties: false, $id: 'vigil.query.v1' },
);
export type QueryEvent = Static<typeof QueryEvent>;
