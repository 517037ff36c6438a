/**
 * Vigil events → OCSF 1.3.0 records. One table entry per event type names its class and builds
 * the class's attributes; the common envelope (metadata, time, actor, endpoints) is built once.
 * Adding a protocol's events (ssh.* → SSH Activity 4007) is one entry in MAPPINGS.
 *
 * Never exported: frame bytes, statement parameters, tokens, target credentials. Statements are the
 * text as stored (masked once masking runs in ingest).
 */
import type { AlertEvent, ApprovalDecided, ApprovalOverride, ChainedEvent } from '@vigil/schemas';
import { parseChTime, type QueryRow } from '../../sinks/clickhouse/rows.ts';
import type { SessionFacts } from '../../transforms/detect/types.ts';
import { OCSF_VERSION } from './validate.ts';

export type OcsfRecord = Record<string, unknown>;
/** Everything that can be exported: chained events, decoded statements, alerts, approval decisions. */
export type Exportable = ChainedEvent | (QueryRow & { type: 'query' }) | AlertEvent | ApprovalDecided | ApprovalOverride;

export interface MapContext {
  session(id: string): SessionFacts | undefined;
  product_version: string;
}

interface ClassPart {
  class_uid: number;
  activity_id: number;
  severity_id?: number;
  status_id?: number;
  message: string;
  [k: string]: unknown;
}

const CLASS_NAMES: Record<number, [string, number, string]> = {
  2004: ['Detection Finding', 2, 'Findings'],
  3002: ['Authentication', 3, 'Identity & Access Management'],
  4001: ['Network Activity', 4, 'Network Activity'],
  4002: ['HTTP Activity', 4, 'Network Activity'],
  4007: ['SSH Activity', 4, 'Network Activity'],
  6002: ['Application Lifecycle', 6, 'Application Activity'],
  6003: ['API Activity', 6, 'Application Activity'],
  6005: ['Datastore Activity', 6, 'Application Activity'],
};
const SEVERITY: Record<string, number> = { low: 2, medium: 3, high: 4, critical: 5 };
const STATUS = { success: 1, failure: 2 } as const;

/** `host:port` / `[v6]:port` → endpoint object. */
export function endpoint(addr: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined && v !== ""));
  if (addr) {
    const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr);
    if (m) {
      out.ip = m[1];
      out.port = Number(m[2]);
    } else out.ip = addr;
  }
  if (Object.keys(out).length === 0) out.name = 'unknown';
  return out;
}

type Any = Record<string, unknown>;

/** The entries: event type → class attributes. */
const MAPPINGS: Record<string, (e: Any, s: SessionFacts | undefined) => ClassPart> = {
  'session.started': (e) => ({
    class_uid: 3002, activity_id: 1, status_id: STATUS.success, message: `logon to ${e.target_id ?? ''}`,
    user: user(e.sub as string, e.groups as string[]), is_mfa: false, service: { name: String(e.target_id ?? '') },
  }),
  'auth.failed': (e) => ({
    class_uid: 3002, activity_id: 1, status_id: STATUS.failure, severity_id: 3, message: `logon failed: ${String(e.code)}`,
    status_detail: String(e.reason ?? ''), status_code: String(e.code ?? ''), user: user((e.sub as string) || (e.claimed_user as string) || 'unknown', e.groups as string[]),
  }),
  'session.ended': (e, s) => ({
    class_uid: 3002, activity_id: 2, status_id: STATUS.success, message: `logoff (${String(e.reason)})`,
    user: user(s?.sub || (e.sub as string) || 'unknown', s?.groups), duration: Math.round(Number(e.duration_us) / 1000), status_detail: String(e.reason),
  }),
  query: (e, s) => ({
    class_uid: 6005, activity_id: queryActivity(String(e.command_tag ?? ''), String(e.statement ?? '')), message: clip(String(e.statement ?? '')),
    status_id: e.sqlstate ? STATUS.failure : STATUS.success, ...(e.sqlstate ? { status_code: String(e.sqlstate) } : {}),
    database: { name: s?.target_id || String(e.target_id ?? ''), type_id: 99, type: 'PostgreSQL' }, type_id: 1,
    query_info: { query_string: clip(String(e.statement ?? '')) }, count: Number(e.rows ?? 0), duration: Math.round(Number(e.duration_us ?? 0) / 1000),
  }),
  'policy.blocked': (e, s) => ({
    class_uid: 6005, activity_id: 4, status_id: STATUS.failure, severity_id: 3, action_id: 2, disposition_id: 2, message: `blocked by policy: ${String(e.message)}`,
    database: { name: s?.target_id || String(e.target_id ?? '') }, query_info: { query_string: clip(String(e.statement ?? '')) }, status_code: String(e.sqlstate),
  }),
  'policy.limit': (e, s) => ({
    class_uid: 6005, activity_id: 99, status_id: STATUS.failure, severity_id: 3, disposition_id: 2, message: `session limit ${String(e.limit)} reached (${String(e.observed)} of ${String(e.value)})`,
    database: { name: s?.target_id || String(e.target_id ?? '') },
  }),
  'protocol.refused': (e) => ({ class_uid: 4001, activity_id: 5, status_id: STATUS.failure, severity_id: 2, message: `refused: ${String(e.code)}`, status_code: String(e.code) }),
  frame: (e) => ({ class_uid: 4001, activity_id: 6, message: `${String(e.direction)} ${String(e.msg_type ?? '')}`, traffic: e.direction === 'c2s' ? { bytes_out: (e.data as Uint8Array).length } : { bytes_in: (e.data as Uint8Array).length } }),
  'policy.loaded': (e) => ({ class_uid: 6002, activity_id: e.reason === 'start' ? 3 : 8, status_id: STATUS.success, message: `policy ${String(e.digest).slice(0, 12)} in force (${String(e.rules)} rules)`, app: gatewayApp(e) }),
  'policy.rejected': (e) => ({ class_uid: 6002, activity_id: 8, status_id: STATUS.failure, severity_id: 3, message: `policy reload refused: ${String(e.code)}`, app: gatewayApp(e) }),
  'approval.requested': (e, s) => approvalApi(e, s, 1, `approval requested (${String(e.rule_id)})`),
  'approval.resolved': (e, s) => approvalApi(e, s, 3, `approval ${String(e.outcome)}`),
  'approval.decided': (e) => approvalApi(e, undefined, 3, `approval decision: ${String(e.decision)}`),
  'approval.override': (e) => ({ ...approvalApi(e, undefined, 3, `approval override: ${String(e.kind)}`), severity_id: 4 }),
  'approval.refused': (e) => ({
    ...approvalApi(e, undefined, 3, `approval decision refused: ${String(e.code)}`), status_id: STATUS.failure, status_code: String(e.code ?? ''), severity_id: e.code === 'GW_ERR_APPROVAL_SELF' ? 4 : 2,
  }),
  'mask.applied': (e, s) => ({
    class_uid: 6005, activity_id: 99, status_id: STATUS.success,
    message: `values masked before the client got them: ${(e.columns as unknown[] | undefined)?.length ?? 0} column(s), ${(e.detectors as unknown[] | undefined)?.length ?? 0} detector(s), ${String(e.rows ?? 0)} row(s)`,
    database: { name: s?.target_id || String(e.target_id ?? ''), type_id: 99, type: 'PostgreSQL' }, type_id: 1,
  }),
  'recording.viewed': (e) => ({
    class_uid: 6003, activity_id: 2, status_id: STATUS.success, message: `recording of session ${String(e.viewed_session_id)} viewed (${String(e.view)})`,
    api: { operation: String(e.route ?? 'recording.viewed'), request: { uid: String(e.event_id) } },
    resources: [{ uid: String(e.viewed_session_id), type: 'session recording' }],
  }),
  // SSH Activity 4007: channel lifecycle, channel requests (pty, exec, env, signals, …) and file transfers.
  'ssh.channel': (e) => ({
    class_uid: 4007, activity_id: e.action === 'open' ? 1 : e.action === 'closed' ? 2 : 5,
    status_id: e.action === 'refused' ? STATUS.failure : STATUS.success, ...(e.action === 'refused' ? { severity_id: 2, status_code: String(e.code ?? '') } : {}),
    message: `ssh ${String(e.kind)} channel ${String(e.action)}${e.reason ? `: ${String(e.reason)}` : ''}`,
  }),
  'ssh.request': (e) => ({
    class_uid: 4007, activity_id: e.accepted ? 99 : 5, status_id: e.accepted ? STATUS.success : STATUS.failure,
    message: `ssh ${String(e.request)} ${e.accepted ? 'accepted' : 'refused'}${e.command ? `: ${clip(String(e.command))}` : ''}`,
  }),
  'ssh.file': (e) => ({
    class_uid: 4007, activity_id: 6, status_id: STATUS.success, message: `${String(e.protocol)} ${String(e.op)} ${String(e.direction)} ${clip(String(e.path))} (${String(e.bytes)} bytes)`,
  }),
  alert: (e) => ({
    class_uid: 2004, activity_id: 1, severity_id: SEVERITY[String(e.severity)] ?? 3, status_id: 1, message: String(e.summary),
    finding_info: {
      uid: String(e.alert_id), title: String(e.rule), desc: String(e.summary), analytic: { name: String(e.rule), type_id: 1, type: 'Rule' },
      related_events: (e.evidence as string[]).map((uid) => ({ uid })),
    },
    evidences: [{ actor: { user: user(String(e.sub), e.groups as string[]) } }],
    resources: [{ name: String(e.target_id), type: 'datastore' }],
  }),
};

/** Types the export maps (a test checks that every schema key has an entry). */
export const MAPPED_TYPES = Object.keys(MAPPINGS);

const clip = (s: string): string => (s.length > 4096 ? `${s.slice(0, 4096)}…` : s);
const user = (name: string | undefined, groups?: string[]) => ({ name: name || 'unknown', uid: name || 'unknown', groups: (groups ?? []).map((g) => ({ name: g })) });
const gatewayApp = (e: Any) => ({ name: 'Vigil gateway', vendor_name: 'Vigil', uid: String(e.gateway_id ?? ''), version: String(e.gateway_version ?? '') });

function approvalApi(e: Any, s: SessionFacts | undefined, activity: number, message: string): ClassPart {
  return { class_uid: 6003, activity_id: activity, status_id: STATUS.success, message, api: { operation: message.split(':')[0]!, request: { uid: String(e.approval_id) } }, src_endpoint: endpoint(s?.client_addr) };
}

function queryActivity(tag: string, statement: string): number {
  const verb = (tag || statement.trimStart().split(/\s/)[0] || '').toUpperCase();
  if (verb.startsWith('SELECT') || verb.startsWith('COPY')) return 4; // Query
  if (verb.startsWith('INSERT')) return 5; // Write
  if (verb.startsWith('UPDATE') || verb.startsWith('ALTER')) return 2; // Update
  if (verb.startsWith('DELETE') || verb.startsWith('DROP') || verb.startsWith('TRUNCATE')) return 7; // Delete
  if (verb.startsWith('CREATE')) return 6; // Create
  return 99;
}

/** Map one event; undefined for a type without an entry (never silently: the caller counts it). */
export function toOcsf(event: Exportable, ctx: MapContext): OcsfRecord | undefined {
  const e = event as unknown as Any;
  const type = String(e.type);
  const entry = MAPPINGS[type];
  if (!entry) return undefined;
  const sessionId = typeof e.session_id === 'string' ? e.session_id : '';
  const s = sessionId ? ctx.session(sessionId) : undefined;
  const part = entry(e, s);
  const [class_name, category_uid, category_name] = CLASS_NAMES[part.class_uid]!;
  const timeUs = typeof e.time === 'string' ? parseChTime(e.time) : Number(e.time);
  const sub = (e.sub as string) || s?.sub || '';
  const record: OcsfRecord = {
    class_uid: part.class_uid, class_name, category_uid, category_name,
    activity_id: part.activity_id, type_uid: part.class_uid * 100 + part.activity_id,
    time: Math.floor(timeUs / 1000), severity_id: part.severity_id ?? 1,
    metadata: {
      version: OCSF_VERSION, uid: String(e.event_id), log_name: type, correlation_uid: sessionId || undefined,
      sequence: typeof e.seq === 'number' ? e.seq : undefined,
      product: { name: 'Vigil', vendor_name: 'Vigil', version: ctx.product_version },
    },
    actor: { user: user(sub || undefined, (e.groups as string[] | undefined) ?? s?.groups), ...(sessionId ? { session: { uid: sessionId } } : {}) },
    src_endpoint: endpoint((e.client_addr as string) || s?.client_addr),
    dst_endpoint: endpoint(e.target_addr as string | undefined, { uid: String(e.target_id ?? s?.target_id ?? '') || undefined }),
  };
  const { class_uid: _c, activity_id: _a, severity_id: _s, ...rest } = part;
  Object.assign(record, rest);
  return JSON.parse(JSON.stringify(record)) as OcsfRecord; // drops undefined members
}
