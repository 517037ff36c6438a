/**
 * Request and response schemas of every route. Responses are serialised through these (fast-json-
 * stringify), so a column added to a table or a field added to a row object never reaches a client
 * until it is declared here.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
  },
  { additionalProperties: false },
);

/** Error responses every route can produce (auth, validation, store, internal). */
export function withProblems<T extends Record<number, TSchema>>(ok: T) {
  return { ...ok, '4xx': ProblemSchema, '5xx': ProblemSchema };
}

/** A µs timestamp as an ISO-8601 string with microseconds, e.g. 2026-01-02T03:04:05.123456Z. */
const Iso = Type.String();

export const SessionSchema = Type.Object(
  {
    session_id: Type.String(),
    started_at: Iso,
    ended_at: Type.Union([Iso, Type.Null()]),
    sub: Type.String(),
    groups: Type.Array(Type.String()),
    issuer: Type.String(),
    actor_kind: Type.String(),
    client_addr: Type.String(),
    client_app: Type.String(),
    target_id: Type.String(),
    protocol: Type.String(),
    target_addr: Type.String(),
    db_name: Type.String(),
    db_user: Type.String(),
    gateway_id: Type.String(),
    tls: Type.Boolean(),
    upstream_tls: Type.Boolean(),
    /** '' while the session is live. */
    end_reason: Type.String(),
    end_detail: Type.String(),
    duration_us: Type.Number(),
    bytes_c2s: Type.Number(),
    bytes_s2c: Type.Number(),
    messages_c2s: Type.Number(),
    messages_s2c: Type.Number(),
    last_hash: Type.String(),
  },
  { additionalProperties: false },
);
export type Session = Static<typeof SessionSchema>;

export const QuerySchema = Type.Object(
  {
    seq: Type.Number(),
    end_seq: Type.Number(),
    event_id: Type.String(),
    time: Iso,
    duration_us: Type.Number(),
    protocol_kind: Type.String(),
    statement: Type.String(),
    statement_name: Type.String(),
    /** false when ingest re-decoded after a restart without seeing the Parse: `statement` is then ''. */
    statement_known: Type.Boolean(),
    /** Bound parameters as stored (masked by ingest); null for SQL NULL. */
    params: Type.Array(Type.Union([Type.String(), Type.Null()])),
    command_tag: Type.String(),
    rows: Type.Number(),
    bytes: Type.Number(),
    sqlstate: Type.String(),
    error: Type.String(),
    /**
     * What the gateway decided, from the events within this statement's frames (seq..end_seq):
     * `blocked` (policy.blocked), `denied` (approval.resolved other than approved: denied, expired,
     * cancelled, …), `approved` (approval.resolved approved), `masked` (mask.applied, nothing else),
     * else `allowed`. A block or denial wins over masking.
     */
    verdict: Type.Union([Type.Literal('allowed'), Type.Literal('blocked'), Type.Literal('approved'), Type.Literal('denied'), Type.Literal('masked')]),
    /** The deciding rule (block, approval or mask; null: allowed, or a policy default decided). */
    verdict_rule: Type.Union([Type.String(), Type.Null()]),
    /** The block message the client received, who approved or denied and why, or what was masked; '' when allowed. */
    verdict_message: Type.String(),
    /** Values of this statement's result were masked (mask.applied), whatever the verdict. */
    masked: Type.Boolean(),
    /** The first rows of the result as stored (masked inline and again at rest): column names and values. */
    preview: Type.Object({ columns: Type.Array(Type.String()), rows: Type.Array(Type.Array(Type.Union([Type.String(), Type.Null()]))) }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);
export type Query = Static<typeof QuerySchema>;

/** A time bound: ISO-8601 (with up to µs) or integer µs since the epoch. */
const TimeParam = Type.String({ minLength: 1, maxLength: 40 });

export const ListSessionsQuerySchema = Type.Object(
  {
    sub: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    target_id: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    protocol: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    actor_kind: Type.Optional(Type.Union([Type.Literal('agent'), Type.Literal('human')])),
    /** true: sessions still open (no session.ended yet); false: ended ones. */
    live: Type.Optional(Type.Boolean()),
    /** true: sessions with at least one detection alert; false: sessions with none. */
    has_alerts: Type.Optional(Type.Boolean()),
    /** Sessions that ran a statement or a shell/exec command containing this text (case-insensitive substring). */
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    /** Sessions started at or after. */
    from: Type.Optional(TimeParam),
    /** Sessions started strictly before. */
    to: Type.Optional(TimeParam),
    limit: Type.Optional(Type.Integer({ minimum: 1 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  },
  { additionalProperties: false },
);
export type ListSessionsQuery = Static<typeof ListSessionsQuerySchema>;

export const SessionListSchema = Type.Object(
  {
    items: Type.Array(SessionSchema),
    /** Opaque; pass back as `cursor` for the next (older) page. null on the last page. */
    next_cursor: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const SessionParamsSchema = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 256 }) },
  { additionalProperties: false },
);

export const SessionDetailQuerySchema = Type.Object(
  {
    /** Return queries with seq strictly greater than this (paging through long sessions). */
    queries_after: Type.Optional(Type.Integer({ minimum: 0 })),
    queries_limit: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const SessionDetailSchema = Type.Object(
  {
    session: SessionSchema,
    /** In session order (seq). */
    queries: Type.Array(QuerySchema),
    /** Pass as `queries_after` for the next queries; null when there are no more. */
    queries_next: Type.Union([Type.Number(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const HealthSchema = Type.Object({ status: Type.String() }, { additionalProperties: false });

export const DiscoverySchema = Type.Object(
  {
    issuer: Type.String(),
    jwks_uri: Type.String(),
    id_token_signing_alg_values_supported: Type.Array(Type.String()),
    subject_types_supported: Type.Array(Type.String()),
    // Present when the dev issuer offers the UI's local sign-in (plugins/login.ts).
    authorization_endpoint: Type.Optional(Type.String()),
    token_endpoint: Type.Optional(Type.String()),
    response_types_supported: Type.Optional(Type.Array(Type.String())),
    grant_types_supported: Type.Optional(Type.Array(Type.String())),
    code_challenge_methods_supported: Type.Optional(Type.Array(Type.String())),
    token_endpoint_auth_methods_supported: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);

/** Public members only: even if a private JWK slipped in, `d`, `p`, `q`… cannot be serialised. */
export const JwksSchema = Type.Object(
  {
    keys: Type.Array(
      Type.Object(
        {
          kty: Type.String(),
          kid: Type.Optional(Type.String()),
          alg: Type.Optional(Type.String()),
          use: Type.Optional(Type.String()),
          crv: Type.Optional(Type.String()),
          x: Type.Optional(Type.String()),
          y: Type.Optional(Type.String()),
          n: Type.Optional(Type.String()),
          e: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** `GET /api/activity`: a time window (defaults: the last 24 hours) and optional filters. */
export const ActivityQuerySchema = Type.Object(
  {
    from: Type.Optional(TimeParam),
    to: Type.Optional(TimeParam),
    sub: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    target_id: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    /** Number of time buckets wanted (the bucket width is rounded to whole seconds). */
    buckets: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  },
  { additionalProperties: false },
);
export type ActivityQuery = Static<typeof ActivityQuerySchema>;

const Count = Type.Object({ key: Type.String(), sessions: Type.Number() }, { additionalProperties: false });

export const ActivitySchema = Type.Object(
  {
    from: Iso,
    to: Iso,
    bucket_s: Type.Number(),
    /** Every bucket of the window, oldest first, empty ones included (so charts need no gap logic). */
    series: Type.Array(
      Type.Object({ t: Iso, sessions: Type.Number(), blocked: Type.Number(), alerts: Type.Number() }, { additionalProperties: false }),
    ),
    /** Top identities and targets by sessions in the window (at most 10 each). */
    by_identity: Type.Array(Count),
    by_target: Type.Array(Count),
    /** Top identities and targets by detection alerts in the window (`sessions` holds the alert count). */
    alerts_by_identity: Type.Array(Count),
    alerts_by_target: Type.Array(Count),
  },
  { additionalProperties: false },
);
export type Activity = Static<typeof ActivitySchema>;
