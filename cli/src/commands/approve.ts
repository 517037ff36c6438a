/**
 * `vigil approve ID --reason …` / `vigil deny ID --reason …` / `vigil approvals [--state pending]`:
 * the approver's side of just-in-time approval, through the API (which checks the decider's token
 * and the rule's terms, and publishes the decision on the event log for the gateway holding the
 * session). The token is the approver's own: `--token`, or $VIGIL_TOKEN.
 */
import { parseArgs } from 'node:util';
import type { VigilConfig } from '../config.ts';

interface Problem {
  code?: string;
  detail?: string;
}

function apiBase(config: VigilConfig, flag: string | undefined): string {
  if (flag) return flag.replace(/\/+$/, '');
  if (process.env.VIGIL_API_URL) return process.env.VIGIL_API_URL.replace(/\/+$/, '');
  const host = config.api.listen_host === '0.0.0.0' ? '127.0.0.1' : config.api.listen_host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.api.listen_port}`;
}

async function call(url: string, token: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers } });
  } catch (err) {
    throw new Error(`cannot reach the API at ${new URL(url).origin} (${(err as Error).cause ? ((err as { cause: Error }).cause.message ?? '') : (err as Error).message}); is \`vigil start\` or \`vigil api\` running? (--api URL)`);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body };
}

function fail(what: string, r: { status: number; body: unknown }): number {
  const p = (typeof r.body === 'object' && r.body !== null ? r.body : {}) as Problem;
  process.stderr.write(`vigil ${what}: refused (${r.status}${p.code ? ` ${p.code}` : ''}): ${p.detail ?? String(r.body)}\n`);
  return r.status === 401 || r.status === 403 ? 77 : 1; // EX_NOPERM
}

export async function decide(config: VigilConfig, decision: 'approve' | 'deny', argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      reason: { type: 'string', short: 'r' },
      token: { type: 'string' },
      api: { type: 'string' },
      override: { type: 'string' },
      'break-glass': { type: 'boolean', default: false },
    },
  });
  const what = decision === 'approve' ? 'approve' : 'deny';
  const id = positionals[0];
  if (!id || positionals.length > 1) {
    process.stderr.write(`usage: vigil ${what} APPROVAL_ID --reason TEXT [--token JWT] [--api URL]${decision === 'approve' ? ' [--break-glass | --override force]' : ''}\n`);
    return 2;
  }
  if (!values.reason || values.reason.trim().length < 3) {
    process.stderr.write(`vigil ${what}: --reason is required (at least 3 characters): a decision is audit evidence\n`);
    return 2;
  }
  const token = values.token ?? process.env.VIGIL_TOKEN;
  if (!token) {
    process.stderr.write(`vigil ${what}: no token: pass --token or set VIGIL_TOKEN (your own approver token)\n`);
    return 2;
  }
  const override = values['break-glass'] ? 'break_glass' : values.override;
  if (override !== undefined && override !== 'force' && override !== 'break_glass') {
    process.stderr.write(`vigil ${what}: --override must be 'force' (admins) or use --break-glass\n`);
    return 2;
  }
  if (override !== undefined && decision !== 'approve') {
    process.stderr.write('vigil deny: an override can only approve\n');
    return 2;
  }
  const url = `${apiBase(config, values.api)}/api/approvals/${encodeURIComponent(id)}/decision`;
  const r = await call(url, token, { method: 'POST', body: JSON.stringify({ decision, reason: values.reason, via: 'cli', ...(override ? { override } : {}) }) });
  if (r.status !== 202) return fail(what, r);
  const b = r.body as { event_id: string; type: string };
  process.stdout.write(`${b.type} published for approval ${id} (event ${b.event_id})\n`);
  return 0;
}

export async function list(config: VigilConfig, argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { config: { type: 'string', short: 'c' }, state: { type: 'string', default: 'pending' }, token: { type: 'string' }, api: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const token = values.token ?? process.env.VIGIL_TOKEN;
  if (!token) {
    process.stderr.write('vigil approvals: no token: pass --token or set VIGIL_TOKEN\n');
    return 2;
  }
  const r = await call(`${apiBase(config, values.api)}/api/approvals?state=${encodeURIComponent(values.state!)}`, token);
  if (r.status !== 200) return fail('approvals', r);
  const items = (r.body as { items: { approval_id: string; state: string; sub: string; target_id: string; rule_id: string; expires_at: string; statement: string }[] }).items;
  if (values.json) process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
  else if (items.length === 0) process.stdout.write(`no ${values.state} approval requests\n`);
  else for (const i of items) process.stdout.write(`${i.approval_id}  ${i.state}  ${i.sub} → ${i.target_id}  rule ${i.rule_id}  expires ${i.expires_at}\n    ${i.statement.slice(0, 200)}\n`);
  return 0;
}
