/**
 * Login: OIDC authorization code flow with PKCE, the UI as a public client. Works against the
 * embedded dev issuer and any OIDC provider whose discovery document names an authorization and a
 * token endpoint (register client `api.ui.client_id` with redirect URI <origin>/ui/callback).
 *
 * The access token lives in sessionStorage: per tab, gone when the tab closes, never in a cookie
 * (so no CSRF), and the UI's CSP allows no script but its own bundle.
 */
import { challengeOf, randomToken } from './pkce.ts';

export interface UiConfig {
  issuer: string;
  client_id: string;
  scope: string;
  redirect_path: string;
}

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

const TOKEN_KEY = 'vigil.token';
const PENDING_KEY = 'vigil.login';

interface Stored {
  access_token: string;
  expires_at_ms: number;
}

export function currentToken(): string | null {
  const raw = sessionStorage.getItem(TOKEN_KEY);
  if (!raw) return null;
  try {
    const t = JSON.parse(raw) as Stored;
    // A minute early: better to log in again than to have the next request refused midway.
    if (t.expires_at_ms - 60_000 > Date.now()) return t.access_token;
  } catch {
    // corrupt entry: treated as logged out
  }
  sessionStorage.removeItem(TOKEN_KEY);
  return null;
}

export function logout(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

export async function loadUiConfig(): Promise<UiConfig> {
  const res = await fetch('/api/ui/config');
  if (!res.ok) throw new Error(`login settings unavailable (${res.status})`);
  return res.json();
}

async function discover(issuer: string): Promise<Discovery> {
  const res = await fetch(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`issuer discovery failed (${res.status})`);
  const d = (await res.json()) as Partial<Discovery>;
  if (!d.authorization_endpoint || !d.token_endpoint) throw new Error('the issuer offers no authorization code login');
  return d as Discovery;
}

const redirectUri = (c: UiConfig) => `${location.origin}${c.redirect_path}`;

/** Leave for the issuer's login page; `returnTo` is where to land afterwards. */
export async function beginLogin(config: UiConfig, returnTo: string): Promise<void> {
  const d = await discover(config.issuer);
  const verifier = randomToken(32);
  const state = randomToken(16);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, returnTo, token_endpoint: d.token_endpoint }));
  const u = new URL(d.authorization_endpoint);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.client_id,
    redirect_uri: redirectUri(config),
    scope: config.scope,
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: 'S256',
  }).toString();
  location.assign(u.toString());
}

/** On /ui/callback: check the state, redeem the code, keep the token. Returns where to go next. */
export async function completeLogin(config: UiConfig, search: string): Promise<string> {
  const p = new URLSearchParams(search);
  const pendingRaw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  if (p.get('error')) throw new Error(`login refused: ${p.get('error')}${p.get('error_description') ? ` (${p.get('error_description')})` : ''}`);
  if (!pendingRaw) throw new Error('no login in progress in this tab; start again');
  const pending = JSON.parse(pendingRaw) as { verifier: string; state: string; returnTo: string; token_endpoint: string };
  // The state ties this answer to the request this tab made (RFC 6749 §10.12).
  if (!p.get('code') || p.get('state') !== pending.state) throw new Error('login answer does not match the request; start again');
  const res = await fetch(pending.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: p.get('code')!,
      redirect_uri: redirectUri(config),
      client_id: config.client_id,
      code_verifier: pending.verifier,
    }),
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
  if (!res.ok || !body.access_token) throw new Error(`token exchange failed: ${body.error ?? res.status}${body.error_description ? ` (${body.error_description})` : ''}`);
  const stored: Stored = { access_token: body.access_token, expires_at_ms: Date.now() + (body.expires_in ?? 300) * 1000 };
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify(stored));
  return pending.returnTo.startsWith('/ui/') ? pending.returnTo : '/ui/';
}
