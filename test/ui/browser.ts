/**
 * Debian Chromium driven by playwright-core (no browser download): headless, sandbox off (tests may
 * run as root), no network chatter of its own, and a fresh profile per launch.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../support/vigil-process.ts';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.VIGIL_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Where the browser tests put their screenshots: docs/screenshots/ (shown in the README) when
 * VIGIL_UPDATE_SCREENSHOTS=1, else a temporary folder removed when the test process exits
 * (VIGIL_TEST_KEEP_DATA=1 keeps it), so an ordinary test run (CI's too) leaves the work tree and
 * /tmp as it found them; every screenshot is still taken either way.
 */
export function screenshotDir(): string {
  if (process.env.VIGIL_UPDATE_SCREENSHOTS === '1') {
    const docs = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
    mkdirSync(docs, { recursive: true });
    return docs;
  }
  return tempDir('vigil-screenshots-');
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'vigil-chromium-'));
  // launchPersistentContext is how playwright takes a --user-data-dir: a fresh one per launch.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1400, height: 900 },
    timeout: 60_000,
  });
  context.setDefaultTimeout(30_000);
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The local admin's password as `vigil start` printed it at its first start. */
export function adminPassword(output: string): string {
  const m = /User: admin {2}Password: (\S+)/.exec(output);
  if (!m) throw new Error(`no admin password in the vigil output:\n${output}`);
  return m[1]!;
}

/** Sign in through the UI (authorization code + PKCE on the dev issuer) and land on the sessions page. */
export async function signIn(page: import('playwright-core').Page, api: string, password: string): Promise<void> {
  await page.goto(`${api}/`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/oauth\/authorize\?/);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${api}/ui/`);
}
