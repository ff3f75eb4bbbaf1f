/**
 * The web console, end to end, as a user walks it: Debian's Chromium (test/helpers/browser.ts) against a real
 * `vmfork serve` on a test home with the test image. The walk logs in with the API token; types a pool spec with
 * an error (named by its field, "Create pool" disabled), fixes it and creates a pool of one child with a screen;
 * watches the task's progress and the child become ready live (server-sent events: the page is never reloaded);
 * claims the child; types `hostname` into its serial console; sees its screen (noVNC: view only, then in control);
 * releases it and sees it refreshed (forked again); reads the pool's ready children from a real Prometheus that
 * scrapes /metrics; logs out, after which the old session cookie opens nothing (API, WebSocket). A second test: no
 * console page or WebSocket answers without a session. Every step waits on the page's state (Playwright's
 * auto-waiting locators), never on a clock, and is photographed into test-artifacts/console/ (docs/testing.md).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { listNamespaces } from '../../src/network/index.js';
import { waitUntil } from '../../src/util/index.js';
import { takeCensus } from '../fixtures/leak-check.js';
import { createTestHome, ensureImage, qemuProcessesMatching, SHARED_RUNG_DEADLINE_MS, teardownHome, VmTracker, type TestHome } from '../fixtures/ladder.js';
import { useBrowser, type BrowserTab } from '../helpers/browser.js';
import { startPrometheus } from '../helpers/prometheus.js';
import { childCell, childRow, rose, screenColours, startServe, stopServe, upgradeStatus, watchProgress, type PageGlobals, type Served } from './console-parts.js';

const POOL = 'walk';
const VM = 'walk-01';
/** The VM state of a ready child, as its row's data-state shows it (docs/lifecycle.md: forked and customized). */
const READY = 'running';

/** A page's answer to a click or a navigation (the SPA is quick; the server shares 2 cores with TCG guests). */
const UI_MS = 60_000;
/** A pool task here: phase 1 and a template boot (two cold boots under TCG), or a child's refresh. */
const TASK_MS = 20 * 60_000;
/** The serial console's answer to a typed command (a TCG guest on a loaded host). */
const SHELL_MS = 60_000;

/**
 * The pool the walk makes: one non-persistent child of the test image with a screen (VNC), on the home's default
 * network, in the memory the other pool tests use. `max` is the field the walk first gets wrong.
 */
function poolSpec(max: number): string {
  return [
    `name: ${POOL}`,
    'image: default',
    'provisioning: up-front',
    'persistent: false',
    `size: { max: ${max} }`,
    `naming: { pattern: "${POOL}-{n:2}" }`,
    'network: default',
    'disks: { disposable: 128M, swap: 32M }',
    'memory: 384M',
    'screen: true',
    '',
  ].join('\n');
}

let th: TestHome;
let tracker: VmTracker;
let server: Served | undefined;

/** One API call with the bearer token (the test's own calls: cleanup, and what the UI must agree with). */
async function api<T>(method: string, path: string): Promise<{ status: number; body: T }> {
  assert.ok(server, 'the server runs');
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${server.token}` } });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

function waitTask(id: string): Promise<{ state: string; lastError: unknown }> {
  return waitUntil(
    async () => {
      const t = (await api<{ state: string; lastError: unknown }>('GET', `/v1/tasks/${id}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(t.state) ? t : undefined;
    },
    { deadlineMs: TASK_MS, everyMs: 500, what: `task ${id} to end` },
  );
}

const wsUrl = (path: string): string => `${server?.url.replace(/^http/, 'ws') ?? ''}${path}`;

/** The pool's page through the header's navigation, as a user goes back to it. */
async function openPool(page: Page): Promise<void> {
  await page.getByRole('link', { name: 'Pools', exact: true }).first().click();
  await page.getByRole('table', { name: 'Pools' }).getByRole('link', { name: POOL, exact: true }).click({ timeout: UI_MS });
  await page.getByRole('heading', { name: POOL, exact: true }).waitFor({ timeout: UI_MS });
}

const browser = useBrowser(() => {
  assert.ok(server, 'the server runs');
  return server.url;
});

before(
  async () => {
    th = await createTestHome('console-walk');
    tracker = new VmTracker(th);
    await ensureImage(th);
    server = await startServe(th.root);
  },
  { timeout: SHARED_RUNG_DEADLINE_MS },
);

after(async () => {
  // a `before` that failed early (the image build) leaves nothing of ours to remove but its data dir
  if (!th) return;
  const problems: string[] = [];
  if (server) {
    const rm = await api<{ taskId?: string }>('DELETE', `/v1/pools/${POOL}`).catch(() => undefined);
    if (rm?.status === 202 && rm.body.taskId) {
      const task = await waitTask(rm.body.taskId);
      if (task.state !== 'succeeded') problems.push(`pool rm ${POOL}: ${task.state} ${JSON.stringify(task.lastError)}`);
    }
    await stopServe(server);
    server = undefined;
  }
  await tracker.teardown();
  problems.push(...(await takeCensus(th)).map((l) => `left by the walk: ${l.kind} ${l.id} (${l.detail})`));
  assert.deepEqual(await qemuProcessesMatching(`${th.root}/`), [], 'no QEMU of this data dir runs (the template\'s parent neither)');
  const prefix = await th.netnsPrefix();
  problems.push(...(await teardownHome(th)));
  assert.deepEqual(problems, [], 'the walk removed its pool and left nothing behind');
  assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith(prefix)), [], 'no namespace (nor a tap in it) is left');
});

test('without a session no console page and no WebSocket answers: 401 with a way to /login, upgrades refused', async () => {
  assert.ok(server, 'the server runs');
  const login = await fetch(`${server.url}/login`);
  assert.equal(login.status, 200, 'the login page is public');
  for (const path of ['/', '/pools', '/pools/new', '/pools/x', '/tasks', '/tasks/x', '/vms/x/console', '/vms/x/screen', '/replicas', '/hosts', '/images', '/templates']) {
    const res = await fetch(`${server.url}${path}`, { redirect: 'manual' });
    assert.equal(res.status, 401, `${path} without a session`);
    assert.match(await res.text(), /\/login/, `${path}: the answer leads to the login page`);
  }
  const origin: Record<string, string> = { origin: server.url };
  for (const path of ['/v1/vms/x/console', '/v1/vms/x/screen', '/v1/vms/x/screen?control=1']) {
    assert.ok([401, 403].includes(await upgradeStatus(wsUrl(path), origin)), `${path}: refused without a session`);
    assert.equal(await upgradeStatus(wsUrl(path), { ...origin, cookie: 'vmfork_session=made-up' }), 401, `${path}: refused with a made-up session`);
  }
  assert.equal((await fetch(`${server.url}/v1/pools`, { headers: { cookie: 'vmfork_session=made-up' } })).status, 401, 'the API refuses a made-up session');
});

test('the console walk: log in, make a pool with a screen, watch it live, claim, console, screen, release, metrics, log out', { timeout: 50 * 60_000 }, async (t) => {
  assert.ok(server, 'the server runs');
  const s = server;
  const { tab } = browser;
  const page = tab.page;
  tracker.track(VM);
  page.on('dialog', (d) => void d.accept());
  t.diagnostic(`Chromium ${browser.version}; console at ${s.consoleUrl}`);
  try {
    await walk(t, s, tab);
  } catch (err) {
    await tab.screenshot('failed').catch(() => undefined);
    process.stderr.write(`\n--- the page's errors ---\n${tab.problems.join('\n') || '(none)'}\n--- vmfork serve ---\n${s.output.join('').slice(-8000)}\n`);
    await tracker.dumpSerialTails();
    throw err;
  }
});

async function walk(t: { diagnostic(message: string): void }, s: Served, tab: BrowserTab): Promise<void> {
  const page = tab.page;

  // a. no session: the console answers 401 and sends the browser to the login page; the API token logs in
  const first = await page.goto(s.consoleUrl);
  assert.equal(first?.status(), 401, `${s.consoleUrl} without a session`);
  await page.waitForURL('**/login', { timeout: UI_MS });
  await page.getByRole('heading', { name: 'Log in to vmfork' }).waitFor({ timeout: UI_MS });
  // photographed before the token is typed: the screenshots are CI artifacts, the token stays out of them
  await tab.screenshot('login');
  await page.getByLabel('API token').fill(s.token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Pools', exact: true }).waitFor({ timeout: UI_MS });
  await tab.screenshot('pools');

  // b. a spec with a wrong field is refused as it is typed, the field named; fixed, it is created
  await page.getByRole('link', { name: 'New pool' }).click();
  await page.waitForURL('**/pools/new', { timeout: UI_MS });
  const specBox = page.getByLabel('Pool spec (YAML)');
  await specBox.fill(poolSpec(0));
  const specErrors = page.getByRole('list', { name: 'Spec errors' }).getByRole('listitem');
  await specErrors.filter({ hasText: /^\s*size\.max:/ }).waitFor({ timeout: UI_MS });
  await page.getByRole('button', { name: 'Create pool', disabled: true }).waitFor({ timeout: UI_MS });
  await tab.screenshot('spec-error');
  await specBox.fill(poolSpec(1));
  await specErrors.first().waitFor({ state: 'detached', timeout: UI_MS });
  await tab.screenshot('spec-valid');
  const events = page.waitForRequest((r) => r.url().includes(`/v1/events?pool=${POOL}`), { timeout: UI_MS });
  await page.getByRole('button', { name: 'Create pool', disabled: false }).click();

  // c. the task's progress rises and the child becomes ready, live: from here the page is never loaded again,
  // what changes comes over the server-sent events (the pool's task takes minutes: phase 1, a template boot)
  await page.waitForURL(`**/pools/${POOL}`, { timeout: UI_MS });
  await page.getByRole('heading', { name: POOL, exact: true }).waitFor({ timeout: UI_MS });
  await events;
  const progress: number[] = [];
  await page.exposeFunction('vmforkProgress', (value: string) => void progress.push(Number(value)));
  await page.evaluate(watchProgress);
  await page.evaluate(() => void ((globalThis as unknown as PageGlobals).vmforkWalkMark = 'not reloaded'));
  let loads = 0;
  page.on('load', () => void (loads += 1));
  await page.getByRole('progressbar', { name: 'Task progress' }).waitFor({ timeout: UI_MS });
  await tab.screenshot('pool-progress');
  await childRow(page, VM).and(page.locator(`[data-state="${READY}"]`)).waitFor({ timeout: TASK_MS });
  await page.getByText('State: ready').waitFor({ timeout: UI_MS });
  await tab.screenshot('pool-ready');
  t.diagnostic(`task progress seen: ${progress.join(' → ')}`);
  assert.ok(rose(progress), `the progress bar rose while the page stayed: ${progress.join(', ')}`);
  assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).vmforkWalkMark), 'not reloaded', 'the page was not reloaded');
  assert.equal(loads, 0, 'no page load between the create and the ready child');

  // d. claimed from its row
  await page.getByRole('button', { name: `Claim ${VM}` }).click();
  await childRow(page, VM).and(page.locator('[data-claimed="true"]')).waitFor({ timeout: TASK_MS });
  await (await childCell(page, VM, 'Claimed by')).filter({ hasText: /\w/ }).waitFor({ timeout: UI_MS });
  await tab.screenshot('claimed');

  // e. its serial console: a root shell that answers `hostname` with the child's name
  await page.getByRole('link', { name: `Console ${VM}` }).click();
  await page.waitForURL(`**/vms/${VM}/console`, { timeout: UI_MS });
  await page.getByRole('heading', { name: `Console: ${VM}` }).waitFor({ timeout: UI_MS });
  const terminal = page.getByLabel('Serial console');
  await terminal.click();
  const answer = terminal.locator('.xterm-rows > div').filter({ hasText: new RegExp(`^\\s*${VM}\\s*$`) }).first();
  // keys typed before the WebSocket opens are not the guest's: typed again (each try waits on the terminal's text)
  for (let attempt = 1; ; attempt += 1) {
    await page.keyboard.type('hostname');
    await page.keyboard.press('Enter');
    try {
      await answer.waitFor({ timeout: SHELL_MS });
      break;
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
  await tab.screenshot('console');

  // f. its screen: not blank; view only until the user takes control
  await openPool(page);
  await page.getByRole('link', { name: `Screen ${VM}` }).click();
  await page.waitForURL(`**/vms/${VM}/screen`, { timeout: UI_MS });
  await page.getByRole('heading', { name: `Screen: ${VM}` }).waitFor({ timeout: UI_MS });
  await page.getByText('View only', { exact: true }).waitFor({ timeout: UI_MS });
  const canvas = page.getByLabel('Screen', { exact: true }).locator('canvas').first();
  await canvas.waitFor({ timeout: UI_MS });
  const shown = await page.waitForFunction(screenColours, await canvas.elementHandle(), { timeout: UI_MS, polling: 500 });
  t.diagnostic(`the screen shows ${String(await shown.jsonValue())} colours (counted up to 16)`);
  await tab.screenshot('screen-view-only');
  await page.getByRole('button', { name: 'Take control' }).click();
  await page.getByText('In control', { exact: true }).waitFor({ timeout: UI_MS });
  await page.getByRole('button', { name: 'Give back control' }).waitFor({ timeout: UI_MS });
  await tab.screenshot('screen-in-control');

  // g. released: refreshed (forked again: a new "Forked at"), ready and unclaimed
  await openPool(page);
  // the fork's own report: the child resumed, it never booted (its boot_id is its template's)
  assert.equal((await (await childCell(page, VM, 'Reboots')).innerText()).trim(), '0', 'the child reached ready with 0 reboots');
  const forkedAt = (await (await childCell(page, VM, 'Forked at')).innerText()).trim();
  assert.ok(forkedAt, 'the row shows when the child was forked');
  await page.getByRole('button', { name: `Release ${VM}` }).click();
  await (await childCell(page, VM, 'Forked at')).filter({ hasNotText: forkedAt }).filter({ hasText: /\d/ }).waitFor({ timeout: TASK_MS });
  await childRow(page, VM).and(page.locator(`[data-state="${READY}"][data-claimed="false"]`)).waitFor({ timeout: TASK_MS });
  await tab.screenshot('released');
  t.diagnostic(`forked at ${forkedAt}, then at ${(await (await childCell(page, VM, 'Forked at')).innerText()).trim()} after the release`);

  // h. Prometheus, scraping the server with the scrape token, sees the pool's one ready child
  const prometheus = await startPrometheus({ target: s.url, credentialsFile: join(th.root, 'metrics-token') });
  try {
    await prometheus.waitForScrape({ timeoutMs: UI_MS });
    const ready = await prometheus.waitForValue(`vmfork_pool_ready_children{pool="${POOL}"}`, (v) => v === 1, { timeoutMs: UI_MS });
    assert.equal(ready, 1, 'Prometheus sees the released child ready');
  } finally {
    await prometheus.stop();
  }

  // the hosts page: this server's host with its machine and the accelerator it chose, and why (TCG here: PVM)
  await page.getByRole('link', { name: 'Hosts', exact: true }).click();
  const hostRow = page.getByRole('table', { name: 'Hosts' }).getByRole('row').filter({ hasText: '(this server)' });
  // by cell: a row's text runs its cells together ("24 GiBtcg"), so no word boundary is seen in it
  await hostRow.getByRole('cell', { name: /^(tcg|kvm)$/ }).waitFor({ timeout: UI_MS });
  await hostRow.getByRole('cell', { name: /^\d+ CPUs × \d+ = \d+$/ }).waitFor({ timeout: UI_MS });
  await tab.screenshot('hosts');

  // i. logged out: the old cookie opens nothing any more (it opened both before)
  const cookie = (await tab.context.cookies()).find((c) => c.name === 'vmfork_session');
  assert.ok(cookie, 'the session cookie is set');
  assert.equal(cookie.httpOnly, true, 'the session cookie is HttpOnly');
  assert.equal(cookie.sameSite, 'Strict', 'the session cookie is SameSite=Strict');
  const withCookie = { cookie: `vmfork_session=${cookie.value}`, origin: s.url };
  assert.equal((await fetch(`${s.url}/v1/pools`, { headers: withCookie })).status, 200, 'the session opens the API');
  assert.equal(await upgradeStatus(wsUrl(`/v1/vms/${VM}/console`), withCookie), 101, 'the session opens the console');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in to vmfork' }).waitFor({ timeout: UI_MS });
  await tab.screenshot('logged-out');
  assert.equal((await fetch(`${s.url}/v1/pools`, { headers: withCookie })).status, 401, 'the old session no longer opens the API');
  assert.ok([401, 403].includes(await upgradeStatus(wsUrl(`/v1/vms/${VM}/console`), withCookie)), 'the old session no longer opens the console');
}
