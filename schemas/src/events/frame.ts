/** `frame` v1: one protocol message, exactly as it crossed the gateway. */
import { Type, type Static } from '@sinclair/typebox';
import { BaseFields } from '../envelope.ts';

export const Direction = Type.Union([
  Type.Literal('c2s'), // client → target
  Type.Literal('s2c'), // target → client
]);
export type Direction = Static<typeof Direction>;

export const FrameEvent = Type.Object(
  {
    type: Type.Literal('frame'),
    version: Type.Literal(1),
    ...BaseFields,
    direction: Direction,
    /** Protocol message type where known (PostgreSQL: the type letter, or 'Startup'/'SSLRequest'…). */
    msg_type: Type.Optional(Type.String()),
    /** Raw bytes of the message. Binary on the wire (never base64 in the log). */
    data: Type.Uint8Array(),
  },
  { additionalProperties: false, $id: 'vigil.frame.v1' },
);
export type FrameEvent = Static<typeof FrameEvent>;
