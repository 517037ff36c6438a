/**
 * The API as the UI uses it: every call carries the user's token; a 401 means "log in again"; other
 * errors are the API's problem+json, shown as they are.
 */
import type { Activity, Query, Session } from '../../../server/src/schemas.ts';
import { currentToken, logout } from '../auth/oidc.ts';

export type { Activity, Query, Session };

export interface Me {
  sub: string;
  issuer: string;
  roles: string[];
  groups: string[];
  actor_kind: string;
  exp: number | null;
}

export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Set by the app: what to do when the token is refused (show the login page). */
let onUnauthenticated: () => void = () => {};
export function setOnUnauthenticated(f: () => void): void {
  onUnauthenticated = f;
}

export async function api<T>(path: string, params?: Record<string, string | number | boolean | undefined>): Promise<T> {
  const qs = params
    ? new URLSearchParams(Object.entries(params).filter((e): e is [string, string | number | boolean] => e[1] !== undefined && e[1] !== '').map(([k, v]) => [k, String(v)])).toString()
    : '';
  return request<T>(`${path}${qs ? `?${qs}` : ''}`, {});
}

/** POST a JSON body; same token and error handling as `api`. */
export async function post<T>(path: string, body: unknown): Promise<T> {
  return request<T>(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** One call with the user's token: 401 means "log in again"; other errors are the API's problem+json. */
async function request<T>(url: string, init: { method?: string; headers?: Record<string, string>; body?: string }): Promise<T> {
  const token = currentToken();
  if (!token) {
    onUnauthenticated();
    throw new ApiProblem(401, 'API_ERR_UNAUTHENTICATED', 'not logged in');
  }
  const res = await fetch(url, { ...init, headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...init.headers } });
  if (res.status === 401) {
    logout();
    onUnauthenticated();
  }
  if (!res.ok) {
    const p = (await res.json().catch(() => ({}))) as { code?: string; detail?: string; title?: string };
    throw new ApiProblem(res.status, p.code ?? 'API_ERR_INTERNAL', p.detail ?? p.title ?? `HTTP ${res.status}`);
  }
  return res.json() as Promise<T>;
}

/** An approval request as GET /api/approvals returns it (replay-ui/server/src/plugins/approvals.ts). */
export interface Approval {
  approval_id: string;
  state: string;
  session_id: string;
  requested_at: string;
  expires_at: string;
  sub: string;
  actor_kind: string;
  target_id: string;
  gateway_id: string;
  rule_id: string;
  protocol_kind: string;
  statement: string;
  features: string[];
  relations: string[];
  approver_groups: string[];
  min_approvers: number;
  approvals: number;
  decisions: { sub: string; decision: string; reason: string; override?: string }[];
}

export const listApprovals = (state = 'pending') => api<{ items: Approval[] }>('/api/approvals', { state });

export const decideApproval = (id: string, body: { decision: 'approve' | 'deny'; reason: string; override?: 'force' | 'break_glass' }) =>
  post<{ approval_id: string; event_id: string; type: string }>(`/api/approvals/${encodeURIComponent(id)}/decision`, { ...body, via: 'ui' });

/** A detection alert as GET /api/alerts returns it (replay-ui/server/src/plugins/alerts.ts). */
export interface Alert {
  alert_id: string;
  time: string;
  rule: string;
  severity: string;
  sub: string;
  groups: string[];
  session_id: string;
  target_id: string;
  summary: string;
  evidence: string[];
  facts: Record<string, number | string | boolean>;
}

export interface AlertFilters {
  alert_id?: string;
  session_id?: string;
  sub?: string;
  rule?: string;
  min_severity?: string;
  target_id?: string;
  from?: string;
  to?: string;
}

export const listAlerts = (f: AlertFilters, cursor?: string) => api<{ items: Alert[]; next: string | null }>('/api/alerts', { ...f, cursor, limit: 50 });

export interface SessionFilters {
  sub?: string;
  actor_kind?: 'agent' | 'human' | '';
  target_id?: string;
  protocol?: string;
  live?: 'true' | 'false' | '';
  has_alerts?: 'true' | 'false' | '';
  q?: string;
  from?: string;
  to?: string;
}

export const listSessions = (f: SessionFilters, cursor?: string) =>
  api<{ items: Session[]; next_cursor: string | null }>('/api/sessions', { ...f, cursor, limit: 50 });

export const getSession = (id: string, after?: number) =>
  api<{ session: Session; queries: Query[]; queries_next: number | null }>(`/api/sessions/${encodeURIComponent(id)}`, { queries_after: after, queries_limit: 200 });

export const getActivity = (p: { from?: string; to?: string; buckets?: number }) => api<Activity>('/api/activity', p);

export const getMe = () => api<Me>('/api/me');
