/**
 * A real browser for the console's end-to-end tests: Debian's Chromium (apt package `chromium`, which scripts/test.sh
 * installs) driven by playwright-core — no browser download. One browser per file, a fresh context (cookies,
 * storage) per test, screenshots numbered in the order taken, and a browser that is always gone at the end: closed,
 * or killed by its process group when closing hangs.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, afterEach, before, beforeEach } from 'node:test';
import { chromium, type Browser, type BrowserContext, type BrowserServer, type Page } from 'playwright-core';

/** Debian's Chromium; VMFORK_CHROMIUM points elsewhere (another build, another distribution's path). */
export const CHROMIUM_PATH = process.env.VMFORK_CHROMIUM ?? '/usr/bin/chromium';

/** dist/test/helpers → the clone's root (the tests run compiled, from dist/). */
const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..');

/** Where the walk's screenshots go (gitignored): `<nn>-<step>.png`, in the order taken. */
export const SCREENSHOT_DIR = join(REPO_ROOT, 'test-artifacts', 'console');

/** How long a close may take before the browser is killed instead. */
const CLOSE_MS = 10_000;

export interface BrowserTab {
  context: BrowserContext;
  page: Page;
  /** Saves the page as `test-artifacts/console/<nn>-<step>.png` and returns its path. */
  screenshot(step: string): Promise<string>;
  /** What the page logged as an error and the exceptions it threw: printed when a test fails. */
  problems: string[];
}

export interface BrowserFixture {
  /** Chromium's version, as the browser reports it (e.g. 150.0.7871.100). */
  version: string;
  /** This test's tab: a fresh context per test, opened by `beforeEach`. */
  tab: BrowserTab;
}

/**
 * Chromium, headless. `--no-sandbox` only as root: Chromium refuses to start as root with its sandbox on (the
 * sandbox drops privileges it cannot drop from root), and the tests run as root to drive QEMU and namespaces.
 * As any other user the sandbox stays on. Launched as a server so its process is ours to kill if closing hangs.
 */
async function launch(): Promise<{ server: BrowserServer; browser: Browser }> {
  const server = await chromium.launchServer({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  try {
    return { server, browser: await chromium.connect(server.wsEndpoint()) };
  } catch (err) {
    await server.kill();
    throw err;
  }
}

/** Resolves with `what`'s result, or `undefined` once `ms` have passed (the caller then forces it). */
async function within<T>(what: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(r, ms, undefined)));
  try {
    return await Promise.race([what, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes the browser; one that does not close in time is killed, by its process group (Chromium's helpers too). */
async function shutDown(server: BrowserServer, browser: Browser): Promise<void> {
  const proc = server.process();
  const exited = proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => proc.once('exit', () => r()));
  await within(browser.close().catch(() => undefined), CLOSE_MS);
  await within(server.close().catch(() => undefined), CLOSE_MS);
  if ((await within(exited.then(() => true), CLOSE_MS)) === true) return;
  await within(server.kill().catch(() => undefined), CLOSE_MS);
  if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
    // Playwright starts Chromium as the leader of its own process group: the group is the browser and its helpers
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      process.kill(proc.pid, 'SIGKILL');
    }
    await exited;
  }
}

/** Screenshots are numbered across the file, so the directory reads as the walk's storyboard. */
let shots = 0;

async function openTab(browser: Browser, baseURL: string): Promise<BrowserTab> {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => void (msg.type() === 'error' && problems.push(`console error: ${msg.text()}`)));
  return {
    context,
    page,
    problems,
    screenshot: async (step) => {
      shots += 1;
      const path = join(SCREENSHOT_DIR, `${String(shots).padStart(2, '0')}-${step}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
  };
}

/**
 * Registers a file's hooks: the browser launched once (the screenshot directory emptied of an earlier run's
 * pictures), a fresh context per test on `baseURL()` (read when the test starts: the server's URL is known by
 * then), the browser shut down after the file whatever happened.
 */
export function useBrowser(baseURL: () => string): BrowserFixture {
  const fixture = {} as BrowserFixture;
  let launched: { server: BrowserServer; browser: Browser } | undefined;
  before(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    for (const f of readdirSync(SCREENSHOT_DIR)) if (f.endsWith('.png')) rmSync(join(SCREENSHOT_DIR, f));
    launched = await launch();
    fixture.version = launched.browser.version();
  });
  beforeEach(async () => {
    assert.ok(launched, 'the browser runs');
    fixture.tab = await openTab(launched.browser, baseURL());
  });
  afterEach(async () => {
    if (fixture.tab) await within(fixture.tab.context.close().catch(() => undefined), CLOSE_MS);
  });
  after(async () => {
    if (launched) await shutDown(launched.server, launched.browser);
    launched = undefined;
  });
  return fixture;
}
