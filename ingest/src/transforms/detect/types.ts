/**
 * What detectors see and say. A batch of chained events and decoded statements is turned into
 * observations (one per relevant event, in time order); each detector is a function of one
 * observation and the batch's baseline context, returning findings. Detectors never do I/O.
 */
import type { AlertEvent, ApprovalResolved } from '@vigil/schemas';
import type { Severity } from './config.ts';

/** Who and where, for the session an observation belongs to. */
export interface SessionFacts {
  sub: string;
  groups: string[];
  actor_kind: string;
  client_addr: string;
  client_app: string;
  target_id: string;
  /** µs; 0 when unknown. */
  started_at: number;
}

interface ObsBase {
  event_id: string;
  session_id: string;
  /** µs, event time. */
  time: number;
  s: SessionFacts;
}

export type Observation =
  | (ObsBase & { kind: 'session_start' })
  | (ObsBase & { kind: 'session_end'; duration_us: number })
  | (ObsBase & { kind: 'query'; rows: number; bytes: number; error: boolean; statement: string; stmt_kinds: string[]; relations: string[] })
  | (ObsBase & { kind: 'blocked'; statement: string })
  | (ObsBase & { kind: 'auth_failed' })
  | (ObsBase & { kind: 'approval_requested'; approval_id: string; statement: string })
  | (ObsBase & { kind: 'approval_resolved'; approval_id: string; outcome: ApprovalResolved['outcome']; decisions: ApprovalResolved['decisions'] })
  /** A decision the API refused; `s` is the decider's identity. */
  | (ObsBase & { kind: 'approval_refused'; approval_id: string; requester: string; code: string });

export type ObservationKind = Observation['kind'];

export interface Finding {
  rule: string;
  severity: Severity;
  summary: string;
  evidence: string[];
  facts: AlertEvent['facts'];
  /** Groups findings into one alert within the suppression window (with rule and sub). */
  dedupe_key: string;
}

/** A fact row for `detect_facts` (first/last seen of a value for an identity). */
export interface FactRow {
  kind: string;
  sub: string;
  value: string;
  time: number;
}

export interface FactView {
  first: number;
  last: number;
  n: number;
}

/** Baseline reads and in-batch bookkeeping offered to detectors (see state.ts). */
export interface DetectContext {
  /** The fact as known before `obs` (from the store plus earlier observations of this batch). */
  fact(kind: string, sub: string, value: string): FactView | undefined;
  /** Record a fact (visible to later observations; written to the store after the batch). */
  note(kind: string, sub: string, value: string, time: number): void;
  /** Total count over every value of a kind for an identity (e.g. sessions seen via `addr`). */
  total(kind: string, sub: string): number;
  /** The identity's hourly baseline (statement maxima and hourly sums), from completed history. */
  baseline(sub: string): { active_hours: number; p95_max_rows: number; p95_hour_rows: number };
  /** Rows read by the identity in (time - window_us, time], this statement included once noted. */
  windowRows(sub: string, time: number, window_us: number): number;
  noteRows(sub: string, time: number, rows: number): void;
  /** Per-session scratch state of a detector (in memory; sessions are partitioned by session id). */
  session<T>(session_id: string, detector: string, init: () => T): T;
}

export interface Detector {
  name: string;
  /** Observation kinds it reads (the transform dispatches only these). */
  kinds: readonly ObservationKind[];
  observe(obs: Observation, ctx: DetectContext): Finding[];
}
