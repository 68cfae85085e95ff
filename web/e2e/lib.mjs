// Shared helpers of the browser suite: logging, steps with a deadline, Chromium launch, pages
// that record every console error, screenshots, and RFC 6238 TOTP codes.
import { createHmac } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const BASE_URL = (process.env.TRELLIS_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Where screenshots go: `e2e/screenshots/`, or a folder under it named by `E2E_SHOTS`. */
export const SHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots', process.env.E2E_SHOTS ?? '');
/** A step's bound; `TEST_PATIENCE` (a factor, as for the Rust tests) scales it on slow machines. */
export const STEP_TIMEOUT_MS = Math.round(30_000 * (Number(process.env.TEST_PATIENCE) > 0 ? Number(process.env.TEST_PATIENCE) : 1));

const started = Date.now();
/** Problems seen in any browser page (console errors, page errors, failed requests). */
const problems = [];
let browser;
let currentStep = 'starting';

export function log(message) {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  console.log(`[e2e ${seconds}s] ${message}`);
}

export async function fail(message) {
  console.error(`\nE2E FAILED during "${currentStep}": ${message}`);
  // What every open page looked like when it failed.
  let n = 0;
  for (const context of browser?.contexts() ?? []) {
    for (const page of context.pages()) {
      n += 1;
      await page.screenshot({ path: join(SHOTS, `failure-${n}.png`), fullPage: true, timeout: 5_000 }).catch(() => {});
      console.error(`  screenshot ${join(SHOTS, `failure-${n}.png`)} (${page.url()})`);
    }
  }
  if (problems.length > 0) {
    console.error('Browser problems:');
    for (const p of problems) console.error(`  - ${p}`);
  }
  await browser?.close().catch(() => {});
  process.exit(1);
}

/** Fails the run if it takes longer than `ms`, whatever hangs. */
export function watchdog(ms) {
  const timer = setTimeout(() => void fail(`the whole run took longer than ${ms / 1000} s`), ms);
  timer.unref();
  return timer;
}

/** Runs one named step; fails when it throws or when a page reported a problem meanwhile. */
export async function step(title, fn) {
  currentStep = title;
  log(title);
  try {
    await fn();
  } catch (error) {
    await fail(error instanceof Error ? error.message.split('\n').slice(0, 6).join('\n') : String(error));
  }
  if (problems.length > 0) await fail('the browser reported an error');
}

export async function launch() {
  await mkdir(SHOTS, { recursive: true });
  currentStep = 'launching Chromium';
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: STEP_TIMEOUT_MS,
  });
  return browser;
}

export async function closeBrowser() {
  currentStep = 'closing';
  await browser?.close();
}

/** Pages cut off from the network on purpose: their failed WebSocket attempts are expected. */
const expectedOffline = new Set();

/** Takes a page's browser context off the network (or back), as a train tunnel would. */
export async function setOffline(page, offline) {
  if (offline) expectedOffline.add(page);
  await page.context().setOffline(offline);
  if (!offline) setTimeout(() => expectedOffline.delete(page), 20_000).unref();
}

/** A new page in `context` whose console errors, uncaught exceptions and failed requests fail the run. */
export async function watchedPage(context, who) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    if (expectedOffline.has(page) && /WebSocket connection to .* failed/.test(msg.text())) return;
    problems.push(`${who}: console error: ${msg.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`${who}: uncaught exception: ${error.message}`));
  page.on('requestfailed', (request) => {
    // Requests the app cancels on purpose (queries dropped on navigation or sign-out) are fine.
    if (request.failure()?.errorText === 'net::ERR_ABORTED') return;
    problems.push(`${who}: request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText ?? 'unknown'})`);
  });
  return page;
}

/**
 * Waits until `success` is visible; if an error alert shows up first, fails with its text so
 * the message says what the server answered.
 */
export async function expectVisible(page, success, what, timeout = STEP_TIMEOUT_MS) {
  const alert = page.getByRole('alert').first();
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await success.isVisible().catch(() => false)) return;
    if (await alert.isVisible().catch(() => false)) {
      const text = (await alert.innerText().catch(() => '')).replace(/\s+/g, ' ').trim();
      if (text !== '') {
        await shot(page, 'failure').catch(() => {});
        await fail(`${what}: the page showed an error: ${text}`);
      }
    }
    await page.waitForTimeout(100);
  }
  await shot(page, 'failure').catch(() => {});
  await fail(`${what}: nothing happened within ${timeout / 1000} s`);
}

/** Waits until a screen-reader live region of the page (the board's drag announcements) says `text`. */
export async function waitForAnnouncement(page, text, what, timeout = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const said = await page
      .evaluate((t) => [...document.querySelectorAll('[aria-live]')].some((e) => (e.textContent ?? '').includes(t)), text)
      .catch(() => false);
    if (said) return;
    await page.waitForTimeout(50);
  }
  const heard = await page
    .evaluate(() => [...document.querySelectorAll('[aria-live]')].map((e) => e.textContent ?? '').join(' | '))
    .catch(() => '?');
  await shot(page, 'failure').catch(() => {});
  await fail(`${what}: the page never announced "${text}" within ${timeout / 1000} s (live regions: ${heard})`);
}

/** Waits until `locator` matches nothing (an element removed after a request and a refetch). */
export async function expectGone(page, locator, what, timeout = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if ((await locator.count().catch(() => 1)) === 0) return;
    await page.waitForTimeout(100);
  }
  await shot(page, 'failure').catch(() => {});
  await fail(`${what}: still there after ${timeout / 1000} s`);
}

/** Polls `predicate` in the page (waitForFunction would need `unsafe-eval`, which the CSP forbids). */
export async function waitUntil(page, predicate, what, timeout = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await page.evaluate(predicate).catch(() => false)) return;
    await page.waitForTimeout(100);
  }
  await fail(`${what}: not seen within ${timeout / 1000} s`);
}

export async function shot(page, label) {
  const path = join(SHOTS, `${label}.png`);
  await page.screenshot({ path, fullPage: true, timeout: STEP_TIMEOUT_MS });
  log(`  screenshot ${path}`);
}

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.toUpperCase().replace(/[^A-Z2-7]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of clean) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 code (HMAC-SHA-1, 6 digits) of a base32 secret for 30-second step `step`. */
export function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, '0');
}

export function currentStep30() {
  return Math.floor(Date.now() / 30_000);
}

const axeSource = await import('node:fs/promises').then((fs) =>
  fs.readFile(new URL('../node_modules/axe-core/axe.min.js', import.meta.url), 'utf8'),
);

/**
 * Runs axe-core (WCAG 2.1 A and AA rules) on the page as it is now and fails on any serious or
 * critical violation: missing labels, names, contrast, landmarks, ARIA misuse. Injected through
 * the DevTools protocol, so the page's CSP stays as strict as in production.
 */
export async function checkAccessibility(page, what) {
  const injected = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!injected) await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  });
  if (result.length > 0) await fail(`accessibility problems on ${what}:\n  ${result.join('\n  ')}`);
  log(`  accessibility: no serious violations on ${what}`);
}
