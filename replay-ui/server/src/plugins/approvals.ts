/**
 * Approvals: what waits, and the decision that lets it run (issue 3, "Just-in-time approval").
 *
 *   GET  /api/approvals?state=pending|approved|denied|expired|cancelled|closed|unavailable|all
 *   GET  /api/approvals/:id
 *   POST /api/approvals/:id/decision   { decision: approve|deny, reason, override?: force|break_glass }
 *
 * The decision is published as `approval.decided` (or `approval.override`) on the control topic;
 * the gateway process that holds the session applies it. The decider is the token's subject — never
 * a body field. Refusals (self-approval, not an approver, already decided) are answered here with
 * the gateway's own rules and are never published as decisions; each is recorded as an
 * `approval.refused` event in the API's own chain (access-audit.ts). `override: force` is for admins only;
 * `break_glass` is open to approvers and admins (self included) and is flagged for detection.
 */
import { randomUUID } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { nowUs, type ApprovalDecided, type ApprovalOverride } from '@vigil/schemas';
import { definePlugin } from '../plugin.ts';
import { apiError } from '../errors.ts';
import { withProblems } from '../schemas.ts';
import type { ApprovalBook, ApprovalEntry } from '../approvals-book.ts';
import type { Role } from './auth.ts';
import type { AccessAudit } from '../access-audit.ts';

const VIEW_ROLES: readonly Role[] = ['approver', 'auditor', 'admin'];
const DECIDE_ROLES: readonly Role[] = ['approver', 'admin'];
const STATES = ['pending', 'approved', 'denied', 'expired', 'cancelled', 'closed', 'unavailable', 'all'] as const;

const iso = (us: number): string => new Date(Math.floor(us / 1000)).toISOString();

const ApprovalSchema = Type.Object(
  {
    approval_id: Type.String(),
    state: Type.String(),
    session_id: Type.String(),
    requested_at: Type.String(),
    expires_at: Type.String(),
    sub: Type.String(),
    actor_kind: Type.String(),
    target_id: Type.String(),
    gateway_id: Type.String(),
    rule_id: Type.String(),
    protocol_kind: Type.String(),
    statement: Type.String(),
    features: Type.Array(Type.String()),
    relations: Type.Array(Type.String()),
    approver_groups: Type.Array(Type.String()),
    min_approvers: Type.Integer(),
    approvals: Type.Integer(),
    decisions: Type.Array(Type.Object({ sub: Type.String(), decision: Type.String(), reason: Type.String(), override: Type.Optional(Type.String()) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object({ state: Type.Optional(Type.Union(STATES.map((s) => Type.Literal(s)))), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }, { additionalProperties: false });
const Params = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });
const DecisionBody = Type.Object(
  {
    decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')]),
    /** Required: a decision is audit evidence. */
    reason: Type.String({ minLength: 3, maxLength: 2000 }),
    override: Type.Optional(Type.Union([Type.Literal('force'), Type.Literal('break_glass')])),
    /** Where the decision was made (cli, ui); default api. */
    via: Type.Optional(Type.Union([Type.Literal('api'), Type.Literal('cli'), Type.Literal('ui')])),
  },
  { additionalProperties: false },
);
type DecisionBody = Static<typeof DecisionBody>;

export const approvalsPlugin = definePlugin<{ book: ApprovalBook | undefined; audit?: AccessAudit | undefined }>(
  async (app, { book, audit }) => {
    const need = (): ApprovalBook => {
      if (!book) throw apiError('API_ERR_APPROVALS_UNAVAILABLE', 'approvals are not available: this API process has no event log configured');
      return book;
    };
    const view = (b: ApprovalBook, e: ApprovalEntry): Static<typeof ApprovalSchema> => {
      const r = e.request;
      return {
        approval_id: r.approval_id,
        state: b.stateOf(e),
        session_id: r.session_id,
        requested_at: iso(r.time),
        expires_at: iso(r.expires_at),
        sub: r.sub ?? '',
        actor_kind: r.actor_kind ?? '',
        target_id: r.target_id ?? '',
        gateway_id: r.gateway_id,
        rule_id: r.rule_id,
        protocol_kind: r.protocol_kind,
        statement: r.statement,
        features: r.features,
        relations: r.relations,
        approver_groups: r.approver_groups,
        min_approvers: r.min_approvers,
        approvals: e.tally.approvals,
        decisions: e.tally.decisions.map((d) => ({ sub: d.sub, decision: d.decision, reason: d.reason, ...(d.override ? { override: d.override } : {}) })),
      };
    };

    app.get<{ Querystring: Static<typeof ListQuery> }>(
      '/api/approvals',
      { config: { roles: VIEW_ROLES }, schema: { querystring: ListQuery, response: withProblems({ 200: Type.Object({ items: Type.Array(ApprovalSchema) }) }) } },
      async (request) => {
        const b = need();
        const items = b.list(request.query.state ?? 'pending').slice(0, request.query.limit ?? 200);
        return { items: items.map((e) => view(b, e)) };
      },
    );

    app.get<{ Params: Static<typeof Params> }>(
      '/api/approvals/:id',
      { config: { roles: VIEW_ROLES }, schema: { params: Params, response: withProblems({ 200: ApprovalSchema }) } },
      async (request) => {
        const b = need();
        const e = b.get(request.params.id);
        if (!e) throw apiError('API_ERR_NOT_FOUND', 'no such approval request');
        return view(b, e);
      },
    );

    app.post<{ Params: Static<typeof Params>; Body: DecisionBody }>(
      '/api/approvals/:id/decision',
      {
        config: { roles: DECIDE_ROLES },
        schema: { params: Params, body: DecisionBody, response: withProblems({ 202: Type.Object({ approval_id: Type.String(), event_id: Type.String(), type: Type.String() }) }) },
      },
      async (request, reply) => {
        const b = need();
        const id = request.identity!;
        const e = b.get(request.params.id);
        if (!e) throw apiError('API_ERR_NOT_FOUND', 'no such approval request');
        const body = request.body;
        const refuse = (code: string, message: string): void =>
          audit?.recordRefusal({
            identity: id,
            client_addr: `${request.ip}:${request.socket.remotePort ?? 0}`,
            approval_id: e.request.approval_id,
            request_session_id: e.request.session_id,
            requester: e.request.sub ?? '',
            decision: body.decision,
            ...(body.override ? { override: body.override } : {}),
            code,
            message,
          });
        if (body.override === 'force' && !id.roles.includes('admin')) {
          refuse('API_ERR_FORBIDDEN', 'override "force" requires the admin role');
          throw apiError('API_ERR_FORBIDDEN', 'override "force" requires the admin role');
        }
        if (body.override !== undefined && body.decision !== 'approve') throw apiError('API_ERR_BAD_REQUEST', 'an override can only approve');
        const base = {
          version: 1 as const,
          event_id: randomUUID(),
          time: nowUs(),
          approval_id: e.request.approval_id,
          session_id: e.request.session_id,
          sub: id.sub,
          groups: id.groups,
          ...(id.issuer ? { issuer: id.issuer } : {}),
          reason: body.reason,
          via: body.via ?? 'api',
        };
        const d: ApprovalDecided | ApprovalOverride =
          body.override !== undefined ? { type: 'approval.override', ...base, kind: body.override } : { type: 'approval.decided', ...base, decision: body.decision };
        const verdict = b.check(e, d);
        if (!verdict.ok) {
          refuse(verdict.code, verdict.message);
          const conflict = verdict.code === 'GW_ERR_APPROVAL_DECIDED' || verdict.code === 'GW_ERR_APPROVAL_DUPLICATE' || verdict.code === 'GW_ERR_APPROVAL_EXPIRED';
          throw apiError(conflict ? 'API_ERR_CONFLICT' : 'API_ERR_FORBIDDEN', `${verdict.code}: ${verdict.message}`);
        }
        try {
          await b.publish(d);
        } catch (err) {
          request.log.error({ approval_id: d.approval_id, err: (err as Error).message }, 'decision could not be published');
          throw apiError('API_ERR_APPROVALS_UNAVAILABLE', 'the decision could not be written to the event log; retry', err);
        }
        request.log.info({ approval_id: d.approval_id, type: d.type, decider: d.sub }, 'approval decision published');
        return reply.code(202).send({ approval_id: d.approval_id, event_id: d.event_id, type: d.type });
      },
    );
  },
  { name: 'vigil-approvals', dependencies: ['vigil-problems', 'vigil-auth'] },
);
