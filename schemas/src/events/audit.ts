/**
 * Access audit (issue 6): who looked at what. The API process keeps a chain of its own
 * (session_id `api:<host>:<boot id>`, on the same topic as the gateway's sessions), so views are
 * tamper-evident like everything else, and analysts watching analysts is one query.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BaseFields } from '../envelope.ts';

export const RecordingViewed = Type.Object(
  {
    type: Type.Literal('recording.viewed'),
    version: Type.Literal(1),
    ...BaseFields,
    /** The session whose recording was served. */
    viewed_session_id: Type.String({ minLength: 1 }),
    /** replay: statements/frames of a recording; live: a live view; export: a download (asciicast, evidence). */
    view: Type.Union([Type.Literal('replay'), Type.Literal('live'), Type.Literal('export')]),
    /** The API route that served it, e.g. `GET /api/sessions/:id`. */
    route: Type.String(),
    /** The viewer's roles from their token. */
    roles: Type.Array(Type.String()),
  },
  { additionalProperties: false, $id: 'vigil.recording.viewed.v1' },
);
export type RecordingViewed = Static<typeof RecordingViewed>;
