/**
 * The approvals inbox end to end in Debian Chromium: a real `psql` runs a statement that a
 * `require_approval` rule holds at the gateway; the signed-in admin (in group vigil-admins, an
 * approver group of the rule) sees it in the inbox with who, what, target, rule and a countdown,
 * approves it with a reason, and the waiting psql completes. A second one is denied and psql fails.
 * Screenshot: approvals.png (into docs/screenshots/ with VIGIL_UPDATE_SCREENSHOTS=1; browser.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Page } from 'playwright-core';
import { startVigil, type VigilProcess, tempDir } from '../support/vigil-process.ts';
import { psql } from '../support/pg-clients.ts';
import { ensureBuilt } from '@vigil/replay-ui/web/build';
import { adminPassword, launchChromium, signIn, type Browser, screenshotDir } from './browser.ts';

const SHOTS = screenshotDir();
const TABLE = `vigil_ui_appr_${randomBytes(4).toString('hex')}`;

let vigil: VigilProcess;
let browser: Browser;
let page: Page;
let api: string;
let direct: pg.Client;

before(async () => {
  await ensureBuilt();
  const dir = tempDir('vigil-ui-appr-');
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(
    policyFile,
    ['version: 1', 'rules:', '  - id: truncate-needs-approval', '    match: { features: { any: [truncate] } }', '    require_approval: { approver_groups: [vigil-admins, dba], timeout_s: 120 }', ''].join('\n'),
  );
  vigil = await startVigil({ config: { gateway: { policy_file: policyFile } } });
  api = `http://127.0.0.1:${vigil.apiPort}`;
  const deadline = Date.now() + 60_000;
  while (!(await fetch(`${api}/api/health`).catch(() => null))?.ok) {
    if (Date.now() > deadline) throw new Error('API not up');
    await new Promise((r) => setTimeout(r, 250));
  }
  direct = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await direct.connect();
  await direct.query(`CREATE TABLE ${TABLE} (id int); INSERT INTO ${TABLE} VALUES (1), (2), (3)`);
  browser = await launchChromium();
  page = await browser.context.newPage();
  await signIn(page, api, adminPassword(vigil.output()));
});

after(async () => {
  await direct?.query(`DROP TABLE IF EXISTS ${TABLE}`).catch(() => {});
  await direct?.end();
  await browser?.close();
  await vigil?.stop();
});

const count = async () => Number((await direct.query(`SELECT count(*)::int AS n FROM ${TABLE}`)).rows[0].n);

async function psqlAs(sub: string, sql: string): Promise<{ ok: boolean; out: string }> {
  const conn = { port: vigil.gatewayPort, user: sub, database: 'local-pg', password: await vigil.token(sub, { groups: ['dev'] }) };
  try {
    return { ok: true, out: await psql(conn, ['-c', sql]) };
  } catch (err) {
    return { ok: false, out: (err as { stderr?: string }).stderr ?? String(err) };
  }
}

test('approve in the inbox while a real psql waits: psql completes', async () => {
  const waiting = psqlAs('paula', `TRUNCATE ${TABLE}`);
  await page.getByRole('link', { name: 'Approvals' }).click();
  await page.waitForURL(`${api}/ui/approvals`);
  const card = page.locator('[data-testid=approvals] li').filter({ hasText: `TRUNCATE ${TABLE}` });
  await card.waitFor({ timeout: 30_000 });
  const text = await card.innerText();
  assert.match(text, /paula/);
  assert.match(text, /local-pg/);
  assert.match(text, /truncate-needs-approval/);
  // The rule's timeout is 120 s: the countdown shows what is left of it (2:00 when the card shows up
  // within half a second of the request).
  const countdown = /^(\d):(\d\d) left$/.exec(await card.getByTestId('countdown').innerText());
  assert.ok(countdown, 'countdown shown as m:ss left');
  const left = Number(countdown[1]) * 60 + Number(countdown[2]);
  assert.ok(left > 60 && left <= 120, `countdown ${left} s within the 120 s timeout`);
  assert.equal(await count(), 3, 'nothing ran yet');
  await card.getByLabel('Reason').fill('CHG-42 cleanup reviewed');
  await page.screenshot({ path: join(SHOTS, 'approvals.png'), fullPage: true });
  await card.getByRole('button', { name: 'Approve', exact: true }).click();
  const r = await waiting;
  assert.ok(r.ok, r.out);
  assert.equal(await count(), 0);
  await card.waitFor({ state: 'detached', timeout: 15_000 });
});

test('deny in the inbox: the waiting psql fails with the approver and reason', async () => {
  await direct.query(`INSERT INTO ${TABLE} VALUES (9)`);
  const waiting = psqlAs('quinn', `TRUNCATE ${TABLE}`);
  const card = page.locator('[data-testid=approvals] li').filter({ hasText: 'quinn' });
  await card.waitFor({ timeout: 30_000 });
  await card.getByLabel('Reason').fill('not in the change window');
  await card.getByRole('button', { name: 'Deny' }).click();
  const r = await waiting;
  assert.equal(r.ok, false);
  assert.match(r.out, /denied under policy rule "truncate-needs-approval".*by admin: not in the change window/);
  assert.equal(await count(), 1);
});

test('query replay shows the approved statement with who approved it and why', async () => {
  // The admin's own token, as the UI holds it (sessionStorage 'vigil.token', replay-ui/web/src/auth/oidc.ts).
  const stored = await page.evaluate(() => sessionStorage.getItem('vigil.token'));
  assert.ok(stored, 'the UI keeps its token in sessionStorage');
  const token = (JSON.parse(stored) as { access_token: string }).access_token;
  const all = (await (await fetch(`${api}/api/approvals?state=all`, { headers: { authorization: `Bearer ${token}` } })).json()) as { items: { sub: string; session_id: string }[] };
  const paulaSession = all.items.find((i) => i.sub === 'paula')!.session_id;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await fetch(`${api}/api/sessions/${paulaSession}`, { headers: { authorization: `Bearer ${token}` } });
    if (r.status === 200 && ((await r.json()) as { queries: { verdict: string }[] }).queries.some((q) => q.verdict === 'approved')) break;
    if (Date.now() > deadline) throw new Error('approved statement not in the store');
    await new Promise((res) => setTimeout(res, 500));
  }
  await page.goto(`${api}/ui/sessions/${paulaSession}`);
  const approved = page.locator('[data-testid=timeline] li[data-verdict=approved]');
  await approved.waitFor();
  assert.match(await approved.innerText(), /approved by admin: CHG-42 cleanup reviewed/);
});
