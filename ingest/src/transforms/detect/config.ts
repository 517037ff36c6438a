/**
 * Detect transform configuration (`ingest.detect`), validated with the rest of the ingest section:
 * defaults from the schema, unknown keys refused. Every detector can be switched off and has its
 * own severity; docs/detection.md explains each option.
 */
import { Type, type Static } from '@sinclair/typebox';

const Severity = Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('critical')]);
const Day = Type.Union(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => Type.Literal(d)));
const HHMM = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$' });

/** Working hours in one time zone. Outside them (or on a holiday) is off-hours. */
export const ScheduleSchema = Type.Object(
  {
    timezone: Type.String({ default: 'UTC' }),
    days: Type.Array(Day, { default: ['mon', 'tue', 'wed', 'thu', 'fri'] }),
    from: Type.Optional(HHMM),
    to: Type.Optional(HHMM),
    /** Local dates (YYYY-MM-DD) in the schedule's zone that are not working days. */
    holidays: Type.Array(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }), { default: [] }),
  },
  { additionalProperties: false },
);

/** An approved change: privileged commands and off-hours work inside it are expected. */
export const ChangeWindowSchema = Type.Object(
  {
    id: Type.String({ minLength: 1 }),
    /** ISO 8601 instants (with offset or Z). */
    start: Type.String({ minLength: 1 }),
    end: Type.String({ minLength: 1 }),
    /** Who and where it covers; empty = everyone / every target. */
    subs: Type.Array(Type.String(), { default: [] }),
    targets: Type.Array(Type.String(), { default: [] }),
  },
  { additionalProperties: false },
);

const on = (severity: Static<typeof Severity>) => ({ enabled: Type.Boolean({ default: true }), severity: { ...Severity, default: severity } });

export const DetectConfigSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    /** Alerts with the same rule, identity and dedupe key within this many seconds are one alert. */
    suppression_window_s: Type.Integer({ minimum: 0, default: 3600 }),
    /** How far back baselines and facts are read. */
    lookback_days: Type.Integer({ minimum: 1, maximum: 400, default: 30 }),
    /** Identities (sub) never alerted on (service health checks, …). */
    exempt_subs: Type.Array(Type.String(), { default: [] }),
    change_windows: Type.Array(ChangeWindowSchema, { default: [] }),
    bulk_read: Type.Object(
      {
        ...on('high'),
        /** Absolute limits for one statement. */
        max_rows_per_query: Type.Integer({ minimum: 1, default: 100_000 }),
        max_bytes_per_query: Type.Integer({ minimum: 1, default: 64 * 1024 * 1024 }),
        /** Sliding window over all of the identity's sessions. */
        window_s: Type.Integer({ minimum: 1, default: 900 }),
        max_rows_per_window: Type.Integer({ minimum: 1, default: 500_000 }),
        /** Baseline: alert when a statement returns more than factor × the identity's usual largest statement, or a window more than factor × its usual busiest hour. */
        baseline_factor: Type.Number({ minimum: 1, default: 10 }),
        /** Hours of activity needed before the baseline is trusted. */
        baseline_min_hours: Type.Integer({ minimum: 1, default: 8 }),
        /** Below this many rows a statement or window never alerts on the baseline (noise floor). */
        baseline_min_rows: Type.Integer({ minimum: 0, default: 1000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    off_hours: Type.Object(
      {
        ...on('medium'),
        schedule: { ...ScheduleSchema, default: {} },
        /** Per-identity schedules (sub → schedule); others use `schedule`. */
        identities: Type.Record(Type.String(), ScheduleSchema, { default: {} }),
        /** Actor kinds checked (agents often run around the clock). */
        actor_kinds: Type.Array(Type.Union([Type.Literal('human'), Type.Literal('agent')]), { default: ['human', 'agent'] }),
      },
      { additionalProperties: false, default: {} },
    ),
    overrides: Type.Object(
      {
        ...on('high'),
        /** How far back "A approved B" is remembered for the mutual-approval check. */
        pair_lookback_days: Type.Integer({ minimum: 1, default: 30 }),
        /** A denied statement tried again by the same identity within this many seconds alerts. */
        retry_window_s: Type.Integer({ minimum: 1, default: 86_400 }),
      },
      { additionalProperties: false, default: {} },
    ),
    new_source: Type.Object(
      {
        ...on('medium'),
        /** Client address (host), client application (user agent), or both. */
        kinds: Type.Array(Type.Union([Type.Literal('addr'), Type.Literal('app')]), { default: ['addr', 'app'] }),
        /** Sessions an identity must already have before a new source is news (a new identity has only new sources). */
        min_history_sessions: Type.Integer({ minimum: 0, default: 5 }),
      },
      { additionalProperties: false, default: {} },
    ),
    rare_access: Type.Object(
      {
        ...on('medium'),
        /** Statements an identity must already have run before a first access is news. */
        min_history_statements: Type.Integer({ minimum: 0, default: 50 }),
        /** Also accept a table as known when any member of one of the identity's groups used it. */
        by_role: Type.Boolean({ default: true }),
      },
      { additionalProperties: false, default: {} },
    ),
    long_session: Type.Object(
      { ...on('low'), max_duration_s: Type.Integer({ minimum: 1, default: 8 * 3600 }) },
      { additionalProperties: false, default: {} },
    ),
    error_burst: Type.Object(
      {
        ...on('medium'),
        window_s: Type.Integer({ minimum: 1, default: 60 }),
        /** Errors (failed statements, policy blocks) in one session within window_s. */
        max_errors: Type.Integer({ minimum: 1, default: 10 }),
      },
      { additionalProperties: false, default: {} },
    ),
    privileged: Type.Object(
      {
        ...on('high'),
        /** PostgreSQL parse-tree statement kinds that count as privileged. */
        statement_kinds: Type.Array(Type.String(), {
          default: [
            'DropStmt', 'TruncateStmt', 'GrantStmt', 'GrantRoleStmt', 'RevokeStmt', 'CreateRoleStmt', 'AlterRoleStmt',
            'DropRoleStmt', 'AlterSystemStmt', 'AlterTableStmt', 'AlterDatabaseStmt', 'DropdbStmt', 'CreateFunctionStmt',
            'AlterOwnerStmt', 'CreateExtensionStmt', 'ReassignOwnedStmt', 'DropOwnedStmt',
          ],
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export type DetectConfig = Static<typeof DetectConfigSchema>;
export type Schedule = Static<typeof ScheduleSchema>;
export type ChangeWindow = Static<typeof ChangeWindowSchema>;
export type Severity = Static<typeof Severity>;
