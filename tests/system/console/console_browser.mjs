// The web console in a real browser (Debian's Chromium, headless, driven by
// Playwright) against a real coordinator with real agents: run by
// tests/system/coordinator/console_system_test.cpp, which owns the fleet and
// restarts the coordinator when this script asks (a file handshake).
//
// Every step checks what a user would see, and what the CLI says about it;
// every page is checked with axe-core and kept as a screenshot. Any script
// error or CSP violation in the page fails the run.
//
// Environment: TIDE_CONSOLE_BASE (http://127.0.0.1:<api port>), TIDE_TOKEN,
// TIDECTL, CHROMIUM, ARTIFACTS (screenshots), HANDSHAKE_DIR, GROUP, NODE_PATH
// (the console's node_modules, with playwright-core and axe-core).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

// The console's npm packages, installed by the build (NODE_PATH: an ES module
// import does not look there, require does).
const require = createRequire(join(process.env.NODE_PATH || '.', 'packages.js'));
const { chromium } = require('playwright-core');
const axeSource = require('axe-core').source;

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env('TIDE_CONSOLE_BASE');
const token = env('TIDE_TOKEN');
const tidectlPath = env('TIDECTL');
const artifacts = env('ARTIFACTS');
const handshake = env('HANDSHAKE_DIR');
const group = process.env.GROUP || 'web';
mkdirSync(artifacts, { recursive: true });

const figures = {};
let step = 'start';
const log = (text) => console.log(`[${new Date().toISOString()}] ${text}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const check = (condition, message) => {
  if (!condition) throw new Error(`${step}: ${message}`);
};
async function until(what, condition, timeoutMs = 15000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await condition();
      if (last) return last;
    } catch (error) {
      last = error.message;
    }
    await sleep(everyMs);
  }
  throw new Error(`${step}: ${what} did not happen within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
}

function tidectl(...args) {
  return execFileSync(tidectlPath, ['--endpoint', base, '--token', token, ...args], { encoding: 'utf8', timeout: 20000 });
}
const tidectlJson = (...args) => JSON.parse(tidectl('-o', 'json', ...args));

const pageErrors = [];
let restarting = false;
async function axeCheck(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const violations = result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  check(violations.length === 0, `axe-core found accessibility violations on the ${name} page:\n  ${violations.join('\n  ')}`);
}
async function keep(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}
async function visit(page, name) {
  await keep(page, name);
  await axeCheck(page, name);
  log(`page ${name}: screenshot kept, axe-core: no violations`);
}
const text = async (page, testid) => (await page.getByTestId(testid).first().textContent()).trim();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
let page;
try {
  const context = await browser.newContext({ locale: 'en-US', timezoneId: 'Asia/Seoul', viewport: { width: 1360, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // Chromium logs every 4xx answer as an error: a 401 before logging in is
    // how the page learns it must ask, a 404 how it learns a group has no
    // rollout. Anything else (a script error, a CSP violation) fails.
    // While the coordinator restarts, its connections break and are refused.
    if (message.type() !== 'error' || /status of 40[14]/.test(message.text())) return;
    if (restarting && /net::ERR_/.test(message.text())) return;
    pageErrors.push(`console: ${message.text()}`);
  });

  step = 'login';
  await page.goto(`${base}/console/`);
  await page.getByTestId('login-form').waitFor();
  await visit(page, 'login');
  await page.getByTestId('login-token').fill('not-the-token');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-error').waitFor();
  await page.getByTestId('login-token').fill(token);
  const loginStarted = Date.now();
  await page.getByTestId('login-submit').click();
  await page.getByTestId(`group-row-${group}`).waitFor();
  figures.overview_after_login_ms = Date.now() - loginStarted;
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'tide_console');
  check(session && session.httpOnly && session.sameSite === 'Strict', `the session cookie is not HttpOnly/SameSite=Strict: ${JSON.stringify(session)}`);
  check(!cookies.some((c) => c.value.includes(token)), 'the token itself is in a cookie');
  await until('the live indicator says live', async () => (await page.getByTestId('live').getAttribute('data-state')) === 'live');
  await visit(page, 'overview');

  step = 'live scale-out from the CLI';
  const desiredBefore = Number(await text(page, `desired-${group}`));
  const target = desiredBefore + 1;
  const setAt = Date.now();
  tidectl('group', 'set', group, '--desired', String(target));
  await until(`the overview shows desired ${target} without a reload`, async () => Number(await text(page, `desired-${group}`)) === target, 10000, 20);
  figures.cli_change_to_page_ms = Date.now() - setAt;
  log(`desired ${desiredBefore} -> ${target} via tidectl: on the page after ${figures.cli_change_to_page_ms} ms`);

  step = 'an instance moves through its states, live';
  await page.getByTestId(`group-link-${group}`).click();
  await page.getByTestId('instances-table').waitFor();
  const rows = page.locator('[data-testid^="instance-row-"]');
  await until(`${target} instance rows`, async () => (await rows.count()) === target, 20000);
  const known = new Set(tidectlJson('instance', 'list', '--group', group).instances.filter((i) => i.state === 'in_service').map((i) => i.id));
  const newest = await until('the new instance', async () => {
    for (const id of await rows.evaluateAll((els) => els.map((e) => e.dataset.testid.replace('instance-row-', '')))) {
      if (!known.has(id)) return id;
    }
    return null;
  });
  const seen = [];
  await until(`instance ${newest} in service`, async () => {
    const state = await page.getByTestId(`instance-row-${newest}`).getAttribute('data-state');
    if (seen[seen.length - 1] !== state) seen.push(state);
    return state === 'in_service';
  }, 30000, 25);
  log(`instance ${newest} went through ${seen.join(' -> ')} on the page`);
  check(seen.length >= 2, `the page showed only ${seen.join(', ')}: no live state changes`);

  step = 'set desired from the page; the CLI agrees';
  await page.getByTestId('action-set-desired').click();
  await page.getByTestId('confirm-dialog').waitFor();
  await page.getByTestId('confirm-input-value').fill(String(target + 1));
  await until('the dialog says what will happen', async () => (await text(page, 'confirm-description')).includes(String(target + 1)));
  const description = await text(page, 'confirm-description');
  log(`the dialog says: ${description}`);
  await page.getByTestId('confirm').click();
  await until(`tidectl shows desired ${target + 1}`, async () => tidectlJson('group', 'show', group).desired === target + 1);
  await until('the page shows it too', async () => Number(await text(page, `desired-${group}`)) === target + 1);

  step = 'protect an instance from the page; the CLI agrees';
  await page.getByTestId(`instance-action-protect-${newest}`).click();
  await page.getByTestId('confirm-dialog').waitFor();
  await page.getByTestId('confirm').click();
  await until(`tidectl shows ${newest} protected`, async () => tidectlJson('instance', 'show', newest).protected_from_scale_in === true);

  step = 'an activity shows its cause';
  const activities = tidectlJson('activity', 'list', group).activities;
  check(activities.length > 0, 'no activities');
  const cause = activities[0].cause;
  await until(`the activity history shows "${cause}"`, async () => (await page.getByTestId('activities').textContent()).includes(cause));

  step = 'the chart has data';
  await page.getByTestId('chart').waitFor();
  const pointsBefore = await until('history samples in the chart', async () => {
    const points = Number(await page.getByTestId('chart').getAttribute('data-points'));
    return points >= 3 ? points : 0;
  }, 30000, 250);
  figures.chart_points_before_restart = pointsBefore;
  await visit(page, 'group');

  step = 'the instance page';
  await page.goto(`${base}/console/#/instances/${newest}`);
  await page.getByTestId('instance-detail').waitFor();
  await until('the agent report', async () => (await page.getByTestId('agent-report').count()) === 1);
  check((await page.getByTestId('timeline-entry').count()) >= 1, 'an empty timeline');
  await visit(page, 'instance');

  step = 'launch configurations';
  await page.getByTestId('nav-launch-configurations').click();
  await page.locator('[data-testid^="lc-row-"]').first().waitFor();
  await visit(page, 'launch-configurations');

  step = 'languages';
  for (const [language, name] of [['ko', 'overview-ko'], ['zh-CN', 'overview-zh-CN']]) {
    await page.getByTestId('nav-overview').click();
    await page.getByTestId('lang-select').selectOption(language);
    await until(`<html lang="${language}">`, async () => (await page.evaluate(() => document.documentElement.lang)) === language);
    await page.getByTestId(`group-row-${group}`).waitFor();
    await visit(page, name);
  }
  await page.getByTestId('lang-select').selectOption('en');

  step = 'a coordinator restart: the page reconnects by itself and the history is still there';
  await page.goto(`${base}/console/#/groups/${group}`);
  await page.getByTestId('chart').waitFor();
  restarting = true;
  writeFileSync(join(handshake, 'restart-please'), '');
  await until('the live indicator says reconnecting', async () => (await page.getByTestId('live').getAttribute('data-state')) === 'reconnecting', 30000, 20);
  await until('the coordinator restarted', async () => existsSync(join(handshake, 'restarted')), 60000, 100);
  const restartedAt = Date.now();
  await until('the live indicator says live again', async () => (await page.getByTestId('live').getAttribute('data-state')) === 'live', 20000, 20);
  figures.reconnect_after_restart_ms = Date.now() - restartedAt;
  restarting = false;
  tidectl('group', 'set', group, '--desired', String(target));
  await until(`desired ${target} after the restart, without a reload`, async () => Number(await text(page, `desired-${group}`)) === target, 10000, 20);
  await page.reload();
  await page.getByTestId('chart').waitFor();
  const pointsAfter = await until('the history from before the restart', async () => {
    const points = Number(await page.getByTestId('chart').getAttribute('data-points'));
    return points >= pointsBefore ? points : 0;
  }, 20000, 250);
  figures.chart_points_after_restart = pointsAfter;

  step = 'log out';
  await page.getByTestId('logout').click();
  await page.getByTestId('login-form').waitFor();
  const status = await page.evaluate(async () => (await fetch('/v1/groups', { headers: { 'X-Tide-Console': '1' } })).status);
  check(status === 401, `after logging out /v1/groups answered ${status}`);

  check(pageErrors.length === 0, `errors in the page:\n  ${pageErrors.join('\n  ')}`);
  writeFileSync(join(artifacts, 'figures.json'), JSON.stringify(figures, null, 2));
  log(`passed: ${JSON.stringify(figures)}`);
} catch (error) {
  console.error(`FAILED at "${step}": ${error.stack || error}`);
  if (pageErrors.length) console.error(`errors in the page:\n  ${pageErrors.join('\n  ')}`);
  if (page) await page.screenshot({ path: join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}
