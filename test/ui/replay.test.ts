/**
 * The web UI end to end, in Debian Chromium: a real `vigil start` (gateway with a policy file,
 * ingest, API serving the built UI), real PostgreSQL traffic through the gateway, then a user who
 * signs in with the printed admin password, finds the session by a statement it ran, opens it and
 * sees every statement with its verdict (one blocked by the policy), and looks at the activity
 * charts. Screenshots of the main views go to docs/screenshots/ (shown in the README) with
 * VIGIL_UPDATE_SCREENSHOTS=1, else to a temporary folder (browser.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Page } from 'playwright-core';
import { startVigil, type VigilProcess, tempDir } from '../support/vigil-process.ts';
import { ensureBuilt } from '@vigil/replay-ui/web/build';
import { launchChromium, type Browser, screenshotDir } from './browser.ts';

const SHOTS = screenshotDir();
const MARKER = `vigil_ui_${randomBytes(4).toString('hex')}`;

let vigil: VigilProcess;
let browser: Browser;
let page: Page;
let api: string;
let password: string;
let analyst: string;
let sessionId: string;
let pgToken: string;

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function getJson(path: string): Promise<any> {
  const res = await fetch(`${api}${path}`, { headers: { authorization: `Bearer ${analyst}` } });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
}

/** One session of an agent-like client: reads, a statement the policy blocks, one that fails. */
async function runTraffic(port: number): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'local-pg', password: pgToken, application_name: 'ui-e2e' });
  await client.connect();
  try {
    await client.query(`SELECT '${MARKER}' AS marker, 42 AS answer`);
    await client.query('SELECT relname FROM pg_class ORDER BY relname LIMIT 25');
    await assert.rejects(client.query(`DROP TABLE IF EXISTS ${MARKER}_scratch`), /no-drop/);
    await assert.rejects(client.query('SELECT 1/0'), /division by zero/);
    await client.query({ text: 'SELECT $1::int + 1 AS next', values: [41] });
  } finally {
    await client.end();
  }
}

before(async () => {
  // The UI as `npm install` builds it (a no-op when dist is up to date).
  await ensureBuilt();
  const policyDir = tempDir('vigil-ui-policy-');
  const policyFile = join(policyDir, 'policy.yaml');
  writeFileSync(
    policyFile,
    ['version: 1', 'rules:', '  - id: no-drop', '    description: nothing is dropped through the gateway', '    match: { features: { any: [drop] } }', '    block: { message: DROP is not allowed through Vigil }', ''].join('\n'),
  );
  vigil = await startVigil({ config: { gateway: { policy_file: policyFile } } });
  api = `http://127.0.0.1:${vigil.apiPort}`;
  await waitFor('the API', async () => ((await fetch(`${api}/api/health`).catch(() => null))?.ok ? true : undefined));
  const m = /User: admin {2}Password: (\S+)/.exec(vigil.output());
  assert.ok(m, `no admin password in the output:\n${vigil.output()}`);
  password = m[1];
  analyst = await vigil.token('carol', { roles: ['analyst'] });
  pgToken = await vigil.token('alice', { groups: ['dba'] });
  await runTraffic(vigil.gatewayPort);
  // Ingest lands the session within a second or so: wait until it has ended with all 5 statements.
  sessionId = await waitFor('the session in the store', async () => {
    const list = await getJson(`/api/sessions?q=${MARKER}`);
    const s = list.items[0];
    if (!s?.ended_at) return undefined;
    const detail = await getJson(`/api/sessions/${s.session_id}`);
    return detail.queries.length >= 5 ? (s.session_id as string) : undefined;
  });
  browser = await launchChromium();
  page = await browser.context.newPage();
});

after(async () => {
  await browser?.close();
  await vigil?.stop();
});

test('the admin password is printed once and kept nowhere in clear (data dir, log output)', () => {
  assert.equal(vigil.output().split(password).length - 1, 1, 'printed exactly once');
  const walk = (d: string): string[] => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
  for (const f of walk(vigil.dataDir)) assert.ok(!readFileSync(f).includes(password), `${f} holds the admin password`);
});

test('sign in: the UI sends the browser to the issuer (code + PKCE), a wrong password is refused, the right one lands back signed in', async () => {
  await page.goto(`${api}/`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/oauth\/authorize\?/);
  const authorize = new URL(page.url());
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(authorize.searchParams.get('response_type'), 'code');
  assert.equal(authorize.searchParams.get('redirect_uri'), `${api}/ui/callback`);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Wrong user name or password.').waitFor();
  await page.screenshot({ path: join(SHOTS, 'login.png') });
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${api}/ui/`);
  await page.getByTestId('who').getByText('admin · admin').waitFor();
  // The token stays in this tab's sessionStorage, never in the URL or a cookie.
  assert.ok(!page.url().includes('code='));
  assert.deepEqual(await browser.context.cookies(), []);
});

test('find the session by a statement it ran (server-side search), with its identity and target', async () => {
  await page.getByLabel('Search statements').fill(MARKER);
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(new RegExp(`\\?q=${MARKER}`));
  const rows = page.locator('[data-testid=sessions] tbody tr');
  // The unfiltered list may still be on screen for a moment after the URL changed: wait for the
  // search's answer (one row) rather than counting whatever is there first.
  const deadline = Date.now() + 15_000;
  while ((await rows.count()) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await rows.count(), 1);
  const row = rows.first();
  assert.equal(await row.getAttribute('data-session-id'), sessionId);
  const text = await row.innerText();
  assert.match(text, /alice/);
  assert.match(text, /local-pg/);
  assert.match(text, /postgres/);
  assert.match(text, /ui-e2e/);
  // A search for text no statement contains finds nothing.
  await page.getByLabel('Search statements').fill(`${MARKER}_never_ran`);
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('No session matches.').waitFor();
  await page.goBack();
  await page.locator(`[data-session-id="${sessionId}"]`).waitFor();
  await page.screenshot({ path: join(SHOTS, 'sessions.png'), fullPage: true });
});

test('filters narrow the list: identity, agent/human, ended', async () => {
  await page.goto(`${api}/ui/?sub=alice&actor_kind=human&live=false&q=${MARKER}`);
  await page.locator(`[data-session-id="${sessionId}"]`).waitFor();
  assert.equal(await page.getByLabel('Identity').inputValue(), 'alice');
  await page.goto(`${api}/ui/?actor_kind=agent&q=${MARKER}`);
  await page.getByText('No session matches.').waitFor();
  await page.goto(`${api}/ui/?sub=bob&q=${MARKER}`);
  await page.getByText('No session matches.').waitFor();
});

test('query replay: every statement in order with duration, rows, bytes, verdict, and the error', async () => {
  await page.goto(`${api}/ui/?q=${MARKER}`);
  await page.locator(`[data-session-id="${sessionId}"] a`).click();
  await page.waitForURL(`${api}/ui/sessions/${sessionId}`);
  const stmts = page.locator('[data-testid=timeline] li');
  await stmts.first().waitFor();
  const all = await stmts.evaluateAll((lis) =>
    lis.map((li) => ({ verdict: li.getAttribute('data-verdict'), sql: li.querySelector('.sql')?.textContent ?? '', text: (li as unknown as { innerText: string }).innerText })),
  );
  const find = (re: RegExp) => {
    const s = all.find((x) => re.test(x.sql));
    assert.ok(s, `no statement matching ${re} in ${JSON.stringify(all.map((x) => x.sql))}`);
    return s;
  };
  const marker = find(new RegExp(`SELECT '${MARKER}'`));
  assert.equal(marker.verdict, 'allowed');
  assert.match(marker.text, /\b1 row\b/);
  assert.match(marker.text, /SELECT 1/);
  const classes = find(/FROM pg_class/);
  assert.match(classes.text, /\b25 rows\b/);
  const drop = find(/DROP TABLE IF EXISTS/);
  assert.equal(drop.verdict, 'blocked');
  assert.match(drop.text, /Blocked by rule no-drop/);
  assert.match(drop.text, /DROP is not allowed through Vigil/);
  const div = find(/1\/0/);
  assert.equal(div.verdict, 'allowed');
  assert.match(div.text, /22012/);
  assert.match(div.text, /division by zero/);
  const bound = find(/\$1::int/);
  assert.match(bound.text, /params: 41/);
  // In session order: the marker first, the bound statement last.
  assert.ok(all.indexOf(marker) < all.indexOf(drop) && all.indexOf(drop) < all.indexOf(bound));
  assert.match(await page.getByTestId('session-meta').innerText(), /1 blocked/);
  // The gateway's token for alice is not shown anywhere in the page.
  assert.ok(!(await page.content()).includes(pgToken.split('.')[2]));
  await page.screenshot({ path: join(SHOTS, 'query-replay.png'), fullPage: true });
});

test('activity charts: sessions over time, by identity and by target', async () => {
  await page.getByRole('link', { name: 'Activity' }).click();
  await page.waitForURL(`${api}/ui/activity`);
  await page.getByText('Sessions by identity').waitFor();
  const identities = await page.locator('.hbars').first().innerText();
  assert.match(identities, /alice/);
  assert.match(await page.locator('.hbars').nth(1).innerText(), /local-pg/);
  assert.match(await page.locator('main').innerText(), /[1-9]\d* sessions, [1-9]\d* blocked statements/);
  assert.ok((await page.locator('.columns rect').count()) >= 2, 'a column for sessions and one for the block');
  await page.screenshot({ path: join(SHOTS, 'activity.png'), fullPage: true });
});

test('signing out forgets the token: the API is asked nothing more without signing in again', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  assert.equal(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('vigil.token')), null);
});
