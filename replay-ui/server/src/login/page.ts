/** The dev issuer's login form (server-rendered, no script). Every interpolated value is escaped. */
import { randomBytes } from 'node:crypto';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The authorization request members carried through the form unchanged. */
export const CARRIED = ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method'] as const;

export interface LoginPage {
  html: string;
  /** Content-Security-Policy for this page (the nonce of its one style block). */
  csp: string;
}

export function loginPage(params: Record<string, string>, opts: { error?: string; user?: string } = {}): LoginPage {
  const nonce = randomBytes(16).toString('base64');
  const hidden = CARRIED.filter((k) => params[k] !== undefined)
    .map((k) => `<input type="hidden" name="${k}" value="${esc(params[k]!)}">`)
    .join('\n      ');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil — sign in</title>
<style nonce="${nonce}">
  body { font: 15px system-ui, sans-serif; background: #0f172a; color: #e2e8f0; display: grid; place-items: center; min-height: 100vh; margin: 0; }
  form { background: #1e293b; padding: 2rem; border-radius: 8px; width: 20rem; display: grid; gap: .75rem; }
  h1 { margin: 0 0 .5rem; font-size: 1.25rem; }
  label { display: grid; gap: .25rem; font-size: .85rem; color: #94a3b8; }
  input[type=text], input[type=password] { padding: .5rem; border-radius: 4px; border: 1px solid #334155; background: #0f172a; color: inherit; }
  button { padding: .6rem; border: 0; border-radius: 4px; background: #38bdf8; color: #0f172a; font-weight: 600; cursor: pointer; }
  .error { color: #fca5a5; margin: 0; }
  .hint { color: #64748b; font-size: .8rem; margin: 0; }
</style>
</head>
<body>
  <form method="post" action="/oauth/authorize" autocomplete="off">
    <h1>Vigil — local sign-in</h1>
    ${opts.error ? `<p class="error" role="alert">${esc(opts.error)}</p>` : ''}
    <label>User <input type="text" name="username" value="${esc(opts.user ?? 'admin')}" required></label>
    <label>Password <input type="password" name="password" required autofocus></label>
      ${hidden}
    <button type="submit">Sign in</button>
    <p class="hint">Embedded dev issuer. The admin password was printed once at first start.</p>
  </form>
</body>
</html>
`;
  const csp = `default-src 'none'; style-src 'nonce-${nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;
  return { html, csp };
}

export function errorPage(message: string): LoginPage {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Vigil — sign-in error</title></head><body><h1>Sign-in error</h1><p>${esc(message)}</p></body></html>\n`;
  return { html, csp: "default-src 'none'; frame-ancestors 'none'; base-uri 'none'" };
}
