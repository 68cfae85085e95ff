// End-to-end smoke test of the Trellis web app against a running server:
// register through the UI, land on projects, create a project, see it listed,
// sign out. Uses Debian's Chromium via playwright-core; screenshots go to
// e2e/screenshots/. Exits non-zero on any failure or browser console error.
//
//   TRELLIS_URL=http://127.0.0.1:8080 npm run e2e
import { mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE_URL = (process.env.TRELLIS_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
const STEP_TIMEOUT_MS = 10_000;
const TOTAL_TIMEOUT_MS = 55_000;

const started = Date.now();
const runId = randomBytes(6).toString('hex');
const email = `smoke-${runId}@example.com`;
const name = 'Smoke Tester';
// 20+ code points, random, unrelated to the email or name.
const password = `${randomBytes(12).toString('hex')} quartz lantern meadow`;
const projectName = `Smoke project ${runId}`;
const projectDescription = 'Created by the end-to-end smoke test.';

/** Problems seen in the browser (console errors, page errors, failed requests). */
const browserProblems = [];
let browser;
let currentStep = 'starting';

function log(message) {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  console.log(`[smoke ${seconds}s] ${message}`);
}

async function fail(message) {
  console.error(`\nSMOKE FAILED during "${currentStep}": ${message}`);
  if (browserProblems.length > 0) {
    console.error('Browser problems:');
    for (const p of browserProblems) console.error(`  - ${p}`);
  }
  await browser?.close().catch(() => {});
  process.exit(1);
}

// Hard limit for the whole run, whatever hangs.
const watchdog = setTimeout(() => {
  void fail(`the whole run took longer than ${TOTAL_TIMEOUT_MS / 1000} s`);
}, TOTAL_TIMEOUT_MS);
watchdog.unref();

async function step(title, fn) {
  currentStep = title;
  log(title);
  await fn();
  if (browserProblems.length > 0) await fail('the browser reported an error');
}

/**
 * Waits until `success` is visible; if an error alert shows up first, fails
 * with its text so the message says what the server answered.
 */
async function expectOutcome(page, success, what) {
  const alert = page.getByRole('alert').first();
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await success.isVisible().catch(() => false)) return;
    if (await alert.isVisible().catch(() => false)) {
      const text = (await alert.innerText().catch(() => '')).replace(/\s+/g, ' ').trim();
      await shot(page, 'failure').catch(() => {});
      await fail(`${what}: the page showed an error: ${text}`);
    }
    await page.waitForTimeout(100);
  }
  await shot(page, 'failure').catch(() => {});
  await fail(`${what}: nothing happened within ${STEP_TIMEOUT_MS / 1000} s`);
}

async function shot(page, label) {
  const path = join(SHOTS, `${label}.png`);
  await page.screenshot({ path, fullPage: true, timeout: STEP_TIMEOUT_MS });
  log(`  screenshot ${path}`);
}

async function main() {
  await mkdir(SHOTS, { recursive: true });
  log(`server ${BASE_URL}, user ${email}`);

  currentStep = 'launching Chromium';
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: STEP_TIMEOUT_MS,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);

  page.on('console', (msg) => {
    if (msg.type() === 'error') browserProblems.push(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (error) => browserProblems.push(`uncaught exception: ${error.message}`));
  page.on('requestfailed', (request) => {
    // Requests the app cancels on purpose (e.g. queries dropped at sign-out) are fine.
    if (request.failure()?.errorText === 'net::ERR_ABORTED') return;
    browserProblems.push(`request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText ?? 'unknown'})`);
  });

  await step('open the app; expect the sign-in page', async () => {
    const response = await page.goto(`${BASE_URL}/`, { waitUntil: 'domcontentloaded' });
    if (!response || !response.ok()) await fail(`GET / answered ${response?.status() ?? 'nothing'}`);
    await expectOutcome(page, page.getByRole('heading', { level: 1, name: 'Sign in to Trellis' }), 'sign-in page did not appear');
    if (new URL(page.url()).pathname !== '/login') await fail(`expected /login, got ${page.url()}`);
    await shot(page, '1-sign-in');
  });

  await step('go to the register page', async () => {
    await page.getByRole('link', { name: 'Create an account' }).click();
    await expectOutcome(page, page.getByRole('heading', { level: 1, name: 'Create your account' }), 'register page did not appear');
  });

  await step('fill in the registration form', async () => {
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('Password', { exact: true }).fill(password);
    const hint = await page.getByTestId('password-hint').innerText();
    if (!hint.startsWith('Long enough')) await fail(`password hint should accept the password, says: ${hint}`);
    await shot(page, '2-register');
  });

  await step('register; expect the projects page', async () => {
    await page.getByRole('button', { name: 'Create account' }).click();
    await expectOutcome(page, page.getByRole('heading', { level: 1, name: 'Projects' }), 'registering and signing in failed');
    if (new URL(page.url()).pathname !== '/projects') await fail(`expected /projects, got ${page.url()}`);
    const shownName = await page.getByTestId('user-name').innerText();
    if (shownName.trim() !== name) await fail(`header shows "${shownName}", expected "${name}"`);
    await expectOutcome(page, page.getByText('No projects yet'), 'a new user should see the empty state');
    await shot(page, '3-projects-empty');
  });

  await step('create a project', async () => {
    await page.getByLabel('Name', { exact: true }).fill(projectName);
    await page.getByLabel('Description', { exact: true }).fill(projectDescription);
    await page.getByRole('button', { name: 'Create project' }).click();
    const list = page.getByRole('list', { name: 'Projects' });
    await expectOutcome(page, list.getByText(projectName, { exact: true }), 'the new project did not appear in the list');
    await expectOutcome(page, list.getByText(projectDescription, { exact: true }), 'the description did not appear');
    await shot(page, '4-projects-created');
  });

  await step('sign out; expect the sign-in page', async () => {
    await page.getByRole('button', { name: /Account menu/ }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expectOutcome(page, page.getByRole('heading', { level: 1, name: 'Sign in to Trellis' }), 'sign-out did not return to sign-in');
    await shot(page, '5-signed-out');
  });

  await step('reload /projects signed out; expect the sign-in page', async () => {
    await page.goto(`${BASE_URL}/projects`, { waitUntil: 'domcontentloaded' });
    await expectOutcome(page, page.getByRole('heading', { level: 1, name: 'Sign in to Trellis' }), 'a signed-out /projects should show sign-in');
  });

  currentStep = 'closing';
  await browser.close();
  clearTimeout(watchdog);
  log(`passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log('1 passed, 0 failed');
}

main().catch((error) => fail(error instanceof Error ? error.message : String(error)));
