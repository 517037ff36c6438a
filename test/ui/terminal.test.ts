/**
 * Terminal replay, live view and alerts end to end in Debian Chromium: a real `vigil start` with an
 * SSH target on a harness sshd (and an off-hours schedule that makes every session of `erin` an
 * alert), an ssh2 client with a PTY through the gateway. The user signs in, finds the SSH session
 * by a command it ran, opens it at a given time and reads the rendered screen, plays it to the end,
 * seeks back and forward (seek bar, command list, keyboard); follows a second, still-open session
 * live while commands are typed into it; opens the alert and lands in the replay at its moment.
 * Screenshots go to docs/screenshots/ (shown in the README) with VIGIL_UPDATE_SCREENSHOTS=1, else to
 * a temporary folder (browser.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import ssh2, { type ClientChannel } from 'ssh2';
import type { Page } from 'playwright-core';
import { startVigil, freePort, type VigilProcess } from '../support/vigil-process.ts';
import { startSshd, TEST_USER, type Sshd } from '@vigil/gateway/protocols/ssh/testkit';
import { ensureBuilt } from '@vigil/replay-ui/web/build';
import { adminPassword, launchChromium, type Browser, signIn, screenshotDir } from './browser.ts';

const SHOTS = screenshotDir();
const MARKER = `vigilterm${randomBytes(3).toString('hex')}`;

let sshd: Sshd;
let vigil: VigilProcess;
let browser: Browser;
let page: Page;
let api: string;
let analyst: string;
let sshPort: number;
let sessionId: string;
/** Offsets (µs since the start) of the output frames that printed each phase. */
const outAt: Record<string, number> = {};
let markers: { t_us: number; label: string }[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function getJson(path: string): Promise<any> {
  const res = await fetch(`${api}${path}`, { headers: { authorization: `Bearer ${analyst}` } });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
}

interface Shell {
  client: InstanceType<typeof ssh2.Client>;
  ch: ClientChannel;
  text(): string;
  until(re: RegExp): Promise<void>;
}

async function openShell(sub: string): Promise<Shell> {
  const token = await vigil.token(sub, { groups: ['dev'] });
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port: sshPort, username: `${sub}@web-1`, password: token, readyTimeout: 30_000 });
  });
  const ch = await new Promise<ClientChannel>((resolve, reject) => client.shell({ term: 'xterm-256color', cols: 100, rows: 24 }, (e, s) => (e ? reject(e) : resolve(s))));
  let out = '';
  ch.on('data', (d: Buffer) => (out += d));
  const until = async (re: RegExp) => {
    for (let i = 0; i < 800 && !re.test(out); i++) await sleep(25);
    assert.match(out, re);
  };
  await until(/\$ $/);
  return { client, ch, text: () => out, until };
}

/** The screen as rendered by xterm.js in the page (its DOM rows). */
const screenText = () => page.locator('[data-testid=terminal-screen] .xterm-rows').innerText();
const playerState = () => page.getByTestId('terminal-player').getAttribute('data-state');

/** Run `action` (a seek), then wait until the player has shown its result and xterm.js drew it. */
async function seekBy(action: () => Promise<void>): Promise<void> {
  const before = Number(await page.getByTestId('terminal-player').getAttribute('data-seeks'));
  await action();
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid=terminal-player]')?.getAttribute('data-seeks')) > n, before);
  await settled();
}

async function settled(): Promise<void> {
  await page.waitForFunction(() => ['paused', 'ended'].includes(document.querySelector('[data-testid=terminal-player]')?.getAttribute('data-state') ?? ''));
  // xterm.js renders on the next animation frame after a write.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

before(async () => {
  await ensureBuilt();
  sshd = await startSshd();
  sshPort = await freePort();
  vigil = await startVigil({
    config: {
      gateway: { ssh: { listen_host: '127.0.0.1', listen_port: sshPort } },
      targets: [
        { id: 'local-pg', protocol: 'postgres', host: '127.0.0.1', port: 5432, database: 'postgres', user: 'postgres' },
        { id: 'web-1', protocol: 'ssh', host: '127.0.0.1', port: sshd.port, user: TEST_USER, host_keys: [sshd.hostKey], private_key: { file: sshd.clientKeyFile } },
      ],
      // Everyone works every day, except erin, who has no working day: each of her sessions (and
      // only hers) raises an off_hours alert.
      ingest: {
        detect: {
          off_hours: {
            schedule: { timezone: 'UTC', days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], holidays: [] },
            identities: { erin: { timezone: 'UTC', days: [], holidays: [] } },
          },
        },
      },
    },
  });
  api = `http://127.0.0.1:${vigil.apiPort}`;
  await waitFor('the API', async () => ((await fetch(`${api}/api/health`).catch(() => null))?.ok ? true : undefined));
  analyst = await vigil.token('carol', { roles: ['analyst'] });

  // The recorded session: three commands, well apart in time, each printing a value its own
  // command line does not contain (so the screen shows output, not just the typed command).
  const sh = await openShell('erin');
  sh.ch.write(`echo ${MARKER} phase-$((1000+234))\r`);
  await sh.until(/phase-1234/);
  await sleep(1500);
  sh.ch.write('echo phase-$((2*2000+21))\r');
  await sh.until(/phase-4021/);
  await sleep(1500);
  sh.ch.write('echo phase-$((3*3000+33))\r');
  await sh.until(/phase-9033/);
  await sleep(800);
  const closed = new Promise<void>((r) => sh.ch.once('close', () => r()));
  sh.ch.write('exit\r');
  await closed;
  sh.client.end();

  sessionId = await waitFor('the ssh session in the store', async () => {
    const s = (await getJson(`/api/sessions?q=${MARKER}`)).items[0];
    if (!s?.ended_at) return undefined;
    const info = await fetch(`${api}/api/sessions/${s.session_id}/terminal`, { headers: { authorization: `Bearer ${analyst}` } });
    if (info.status !== 200) return undefined;
    const body = await info.json();
    return body.markers.length >= 4 ? (s.session_id as string) : undefined;
  });
  markers = (await getJson(`/api/sessions/${sessionId}/terminal`)).markers;
  const events = (await getJson(`/api/sessions/${sessionId}/terminal/events?after_seq=-1&limit=2000`)).events as { t_us: number; code: string; data: string }[];
  for (const e of events) {
    const text = e.code === 'o' ? Buffer.from(e.data, 'base64').toString() : '';
    for (const p of ['phase-1234', 'phase-4021', 'phase-9033']) if (text.includes(p) && outAt[p] === undefined) outAt[p] = e.t_us;
  }
  assert.deepEqual(Object.keys(outAt).sort(), ['phase-1234', 'phase-4021', 'phase-9033']);

  browser = await launchChromium();
  page = await browser.context.newPage();
});

after(async () => {
  await browser?.close();
  await vigil?.stop();
  await sshd?.stop();
});

test('sign in and find the SSH session by a command it ran', async () => {
  await signIn(page, api, adminPassword(vigil.output()));
  await page.getByLabel('Search statements').fill(`echo ${MARKER}`);
  await page.getByRole('button', { name: 'Search' }).click();
  const rows = page.locator('[data-testid=sessions] tbody tr');
  const deadline = Date.now() + 15_000;
  while ((await rows.count()) !== 1 && Date.now() < deadline) await sleep(100);
  assert.equal(await rows.count(), 1);
  assert.equal(await rows.first().getAttribute('data-session-id'), sessionId);
  assert.match(await rows.first().innerText(), /erin[\s\S]*web-1[\s\S]*ssh/);
  await rows.first().locator('a').click();
  await page.waitForURL(`${api}/ui/sessions/${sessionId}`);
  await page.getByTestId('terminal-player').waitFor();
  await page.getByTestId('command-list').locator('li').nth(3).waitFor();
  // The command list beside the screen: every command, in order.
  const cmds = await page.getByTestId('command-list').innerText();
  assert.match(cmds, new RegExp(`echo ${MARKER} phase-\\$\\(\\(1000\\+234\\)\\)[\\s\\S]*echo phase-\\$\\(\\(2\\*2000\\+21\\)\\)[\\s\\S]*echo phase-\\$\\(\\(3\\*3000\\+33\\)\\)[\\s\\S]*exit`));
});

test('the rendered screen at a given time shows what the session showed then, and no more', async () => {
  const between = (outAt['phase-4021']! + outAt['phase-9033']!) / 2;
  await page.goto(`${api}/ui/sessions/${sessionId}?t=${(between / 1e6).toFixed(3)}`);
  await settled();
  const pos = Number(await page.getByTestId('terminal-player').getAttribute('data-position-us'));
  assert.ok(Math.abs(pos - between) < 1000, `positioned at ${pos}, asked ${between}`);
  const text = await screenText();
  assert.match(text, /phase-1234/);
  assert.match(text, /phase-4021/);
  assert.doesNotMatch(text, /phase-9033/);
  await page.screenshot({ path: join(SHOTS, 'terminal-replay.png'), fullPage: true });
});

test('play at 4× to the end: the last output appears and the player ends', async () => {
  await page.getByLabel('Speed').selectOption('4');
  await page.getByRole('button', { name: 'Play' }).click();
  await page.waitForFunction(() => document.querySelector('[data-testid=terminal-player]')?.getAttribute('data-state') === 'playing');
  await page.waitForFunction(() => document.querySelector('[data-testid=terminal-player]')?.getAttribute('data-state') === 'ended', null, { timeout: 30_000 });
  await settled();
  assert.match(await screenText(), /phase-9033/);
});

test('seek back (seek bar, Home) and forward (command list, End): the screen follows', async () => {
  // Back to the very start: nothing printed yet.
  const bar = page.getByTestId('seekbar');
  await bar.focus();
  await seekBy(() => page.keyboard.press('Home'));
  assert.equal(await page.getByTestId('terminal-player').getAttribute('data-position-us'), '0');
  assert.doesNotMatch(await screenText(), /phase-/);
  // Forward to the second command (a click in the command list): its output is not there yet.
  await seekBy(() => page.getByTestId('command-list').getByRole('button', { name: /2\*2000/ }).click());
  let text = await screenText();
  assert.match(text, /phase-1234/);
  assert.doesNotMatch(text, /phase-4021/);
  // A click on the bar just after the second output.
  const box = (await bar.boundingBox())!;
  const dur = Number(await page.getByTestId('terminal-player').getAttribute('data-duration-us'));
  const frac = (outAt['phase-4021']! + 300_000) / dur;
  assert.ok(outAt['phase-4021']! + 300_000 < outAt['phase-9033']!);
  await seekBy(() => page.mouse.click(box.x + box.width * frac, box.y + box.height / 2));
  text = await screenText();
  assert.match(text, /phase-4021/);
  assert.doesNotMatch(text, /phase-9033/);
  // Back again, to before the first output.
  await seekBy(() => page.mouse.click(box.x + 1, box.y + box.height / 2));
  assert.doesNotMatch(await screenText(), /phase-1234/);
  // And to the end.
  await bar.focus();
  await seekBy(() => page.keyboard.press('End'));
  assert.match(await screenText(), /phase-9033/);
});

test('live view: an open session is followed as it happens, then becomes a recording', async () => {
  const sh = await openShell('frank');
  sh.ch.write('echo live-$((500+55))\r');
  await sh.until(/live-555/);
  const liveId = await waitFor('the live session', async () => {
    const s = (await getJson('/api/sessions?sub=frank&live=true')).items[0];
    if (!s) return undefined;
    const r = await fetch(`${api}/api/sessions/${s.session_id}/terminal`, { headers: { authorization: `Bearer ${analyst}` } });
    return r.status === 200 ? (s.session_id as string) : undefined;
  });
  await page.goto(`${api}/ui/sessions/${liveId}`);
  await page.waitForFunction(() => document.querySelector('[data-testid=terminal-player]')?.getAttribute('data-state') === 'live');
  await page.locator('[data-testid=terminal-screen] .xterm-rows', { hasText: 'live-555' }).waitFor({ timeout: 30_000 });
  // Typed after the viewer opened: arrives through the stream.
  sh.ch.write('echo later-$((600+66))\r');
  await sh.until(/later-666/);
  await page.locator('[data-testid=terminal-screen] .xterm-rows', { hasText: 'later-666' }).waitFor({ timeout: 30_000 });
  await page.screenshot({ path: join(SHOTS, 'terminal-live.png'), fullPage: true });
  const closed = new Promise<void>((r) => sh.ch.once('close', () => r()));
  sh.ch.write('exit\r');
  await closed;
  sh.client.end();
  await page.waitForFunction(() => document.querySelector('[data-testid=terminal-player]')?.getAttribute('data-state') === 'ended', null, { timeout: 30_000 });
  assert.match(await page.getByTestId('command-list').innerText(), /later-\$\(\(600\+66\)\)/);
});

test('alerts: the list, the detail, and the replay at the alert\'s moment; has-alerts filter', async () => {
  const alert = await waitFor('the off_hours alert', async () => (await getJson(`/api/alerts?session_id=${sessionId}`)).items[0]);
  await page.getByRole('link', { name: 'Alerts' }).click();
  await page.waitForURL(`${api}/ui/alerts`);
  const row = page.locator(`[data-alert-id="${alert.alert_id}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /off_hours[\s\S]*erin[\s\S]*web-1/);
  await page.screenshot({ path: join(SHOTS, 'alerts.png'), fullPage: true });
  await row.locator('a').first().click();
  await page.waitForURL(`${api}/ui/alerts/${alert.alert_id}`);
  const detail = await page.getByTestId('alert-detail').innerText();
  assert.match(detail, /session started outside working hours/);
  assert.match(detail, new RegExp(sessionId));
  await page.getByRole('link', { name: /Open the replay at this moment/ }).click();
  await page.waitForURL(new RegExp(`/ui/sessions/${sessionId}\\?at=`));
  await settled();
  // The alert's moment (the session's start) lies before any command output.
  const pos = Number(await page.getByTestId('terminal-player').getAttribute('data-position-us'));
  assert.ok(pos < outAt['phase-1234']!, `at ${pos}`);
  assert.match(await page.getByTestId('session-alerts').innerText(), /off_hours/);
  // The sessions list's "has alerts" filter keeps erin's session and drops frank's.
  await page.goto(`${api}/ui/?has_alerts=true&target_id=web-1`);
  await page.locator(`[data-session-id="${sessionId}"]`).waitFor();
  assert.equal(await page.locator('[data-testid=sessions] tbody tr', { hasText: 'frank' }).count(), 0);
});
