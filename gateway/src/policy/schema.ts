/**
 * The policy file format (version 1) as TypeBox schemas: the single source of truth for keys,
 * types and defaults. Enumerations are unions of literals so that an unknown value is a schema
 * error at its exact path (parse.ts turns those into "expected one of …"). What a schema cannot say
 * (time zones, glob syntax, one decision per rule, …) is checked by check.ts.
 */
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox';
import { STATEMENT_FEATURES } from '../sql/features.ts';

function oneOf<const T extends readonly string[]>(values: T, options: { default?: T[number] } = {}): TUnion<TLiteral<T[number]>[]> {
  return Type.Union(values.map((v) => Type.Literal(v)) as never, options) as never;
}

const Globs = (description: string) => Type.Array(Type.String({ minLength: 1, maxLength: 512 }), { minItems: 1, maxItems: 1000, description });

export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Day = (typeof DAYS)[number];

export const DETECTORS = ['card', 'email', 'phone', 'us_ssn', 'iban', 'jwt', 'api_key', 'private_key'] as const;
export type Detector = (typeof DETECTORS)[number];

export const MASK_STRATEGIES = ['redact', 'partial', 'hash', 'null'] as const;
export type MaskStrategy = (typeof MASK_STRATEGIES)[number];

export const ActorKind = oneOf(['agent', 'human'] as const);
/** SSH channel kinds a command context can carry (docs/ssh.md, "Command policy"). */
export const SSH_CHANNEL_KINDS = ['shell', 'exec', 'sftp', 'scp', 'subsystem', 'direct-tcpip', 'tcpip-forward', 'x11', 'agent'] as const;
export type SshChannelKind = (typeof SSH_CHANNEL_KINDS)[number];
export const Feature = oneOf(STATEMENT_FEATURES);

export const TimeWindowSchema = Type.Object(
  {
    /** Days on which the window starts (a window that wraps midnight ends on the next day). Default: every day. */
    days: Type.Optional(Type.Array(oneOf(DAYS), { minItems: 1, maxItems: 7 })),
    /** Local wall-clock start, HH:MM, inclusive. */
    from: Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', default: '00:00', 'x-expected': 'HH:MM (00:00 to 23:59)' }),
    /** Local wall-clock end, HH:MM, exclusive; 24:00 is the end of the day; to < from wraps midnight. */
    to: Type.String({ pattern: '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$', default: '24:00', 'x-expected': 'HH:MM (00:00 to 24:00)' }),
    /** IANA name (Europe/Paris, America/New_York, UTC), checked when the policy is loaded. */
    timezone: Type.String({ minLength: 1, default: 'UTC' }),
    /** Match when the time is NOT in the window ("outside business hours"). */
    outside: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

export const FeatureMatchSchema = Type.Object(
  {
    /** The statement has at least one of these. */
    any: Type.Optional(Type.Array(Feature, { minItems: 1 })),
    /** The statement has every one of these. */
    all: Type.Optional(Type.Array(Feature, { minItems: 1 })),
  },
  { additionalProperties: false },
);

/** Every condition given must hold (AND); a list inside a condition is any-of (OR). */
export const MatchSchema = Type.Object(
  {
    sub: Type.Optional(Globs('Identity subject (token `sub`), globs, case-sensitive.')),
    groups: Type.Optional(Globs('The identity is in at least one of these groups (globs).')),
    actor_kind: Type.Optional(ActorKind),
    targets: Type.Optional(Globs('Target ids (globs).')),
    time: Type.Optional(TimeWindowSchema),
    features: Type.Optional(FeatureMatchSchema),
    relations: Type.Optional(Globs('Tables/views referenced: `schema.table` or `table` globs, case-insensitive.')),
    functions: Type.Optional(Globs('Functions called: `schema.name` or `name` globs, case-insensitive.')),
    /** SSH: the command line, or one of its `;`/`&&`/`||`/`|` segments, matches a glob (case-sensitive). */
    commands: Type.Optional(Globs('SSH command lines (exec, or a line entered in a shell), globs.')),
    /** SSH: the channel kind the command context comes from. */
    channels: Type.Optional(Type.Array(oneOf(SSH_CHANNEL_KINDS), { minItems: 1 })),
  },
  { additionalProperties: false },
);

export const AllowSchema = Type.Literal(true);

export const BlockSchema = Type.Object(
  {
    /** Five characters, e.g. 42501 (insufficient_privilege). */
    sqlstate: Type.String({ pattern: '^[0-9A-Z]{5}$', default: '42501', 'x-expected': 'a five-character SQLSTATE such as 42501' }),
    /** Shown to the client; default names the rule. */
    message: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
  },
  { additionalProperties: false },
);

export const ApprovalSchema = Type.Object(
  {
    approver_groups: Globs('Groups whose members may approve (globs).'),
    min_approvers: Type.Integer({ minimum: 1, maximum: 10, default: 1 }),
    /** The held statement is denied when no decision arrives in time. */
    timeout_s: Type.Integer({ minimum: 1, maximum: 86_400, default: 300 }),
    allow_self_approval: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

export const MaskSchema = Type.Object(
  {
    /** `schema.table.column` or `table.column` globs, case-insensitive. */
    columns: Type.Optional(Globs('Result columns to mask.')),
    detectors: Type.Optional(Type.Array(oneOf(DETECTORS), { minItems: 1 })),
    strategy: oneOf(MASK_STRATEGIES, { default: 'redact' }),
    /** Characters left visible by `partial` (default 4). */
    keep_last: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  },
  { additionalProperties: false },
);

export const LimitsSchema = Type.Object(
  {
    max_duration_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 86_400 })),
    /** Rows returned to the caller over the whole session. */
    max_rows: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const RuleSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$', 'x-expected': 'letters, digits and . _ : - (starting with a letter or digit)' }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    /** Absent or {}: matches everything. */
    match: Type.Object(MatchSchema.properties, { additionalProperties: false, default: {} }),
    allow: Type.Optional(AllowSchema),
    /** `block: true` is shorthand for `block: {}` (parse.ts expands it before validation). */
    block: Type.Optional(BlockSchema),
    require_approval: Type.Optional(ApprovalSchema),
    mask: Type.Optional(MaskSchema),
    limits: Type.Optional(LimitsSchema),
  },
  { additionalProperties: false },
);

export const DefaultsSchema = Type.Object(
  {
    /** Decision when no allow/block/require_approval rule matches. */
    action: oneOf(['allow', 'block'] as const, { default: 'allow' }),
    /** Decision for a statement the parser rejected, on a target some rule governs. */
    unparsable: oneOf(['block', 'allow'] as const, { default: 'block' }),
  },
  { additionalProperties: false },
);

export const PolicySchema = Type.Object(
  {
    version: Type.Literal(1),
    defaults: Type.Object(DefaultsSchema.properties, { additionalProperties: false, default: {} }),
    rules: Type.Array(RuleSchema, { maxItems: 10_000, default: [] }),
  },
  { additionalProperties: false },
);

export type TimeWindow = Static<typeof TimeWindowSchema>;
export type Match = Static<typeof MatchSchema>;
export type BlockAction = Static<typeof BlockSchema>;
export type ApprovalAction = Static<typeof ApprovalSchema>;
export type MaskAction = Static<typeof MaskSchema>;
export type LimitsAction = Static<typeof LimitsSchema>;
export type Rule = Static<typeof RuleSchema>;
export type PolicyDefaults = Static<typeof DefaultsSchema>;
/** A validated policy file with defaults applied; deeply frozen by parse.ts. */
export type Policy = Static<typeof PolicySchema>;
