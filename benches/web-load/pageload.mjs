// S13 (docs/PERFORMANCE.md): page load of the web app in headless Chromium on loopback: time to first
// byte of the HTML, Largest Contentful Paint, and the first API answer (the signed-in projects
// list), cold (a fresh browser context, empty cache) and warm (a reload in the same context);
// plus the JavaScript a first load fetches, gzip-compressed. A benchmark, not a test.
//
//   node benches/web-load/pageload.mjs http://127.0.0.1:8080 [runs=40]
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../../web/package.json'));
const { chromium } = require('playwright-core');

const base = (process.argv[2] ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const runs = Number(process.argv[3] ?? 40);

function pct(values, p) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}
const fmt = (v) => (Number.isFinite(v) ? v.toFixed(1) : '–');

async function api(path, body, token) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

/** Collected in the page: navigation timing, LCP, and the first /api/ answer. */
const PROBE = () =>
  new Promise((resolve) => {
    let lcp = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) lcp = Math.max(lcp, e.startTime);
    }).observe({ type: 'largest-contentful-paint', buffered: true });
    const done = () => {
      const nav = performance.getEntriesByType('navigation')[0];
      const apiEntry = performance.getEntriesByType('resource').find((r) => r.name.includes('/api/projects'));
      const scripts = performance.getEntriesByType('resource').filter((r) => r.initiatorType === 'script' || r.name.endsWith('.js'));
      resolve({
        ttfb: nav.responseStart - nav.requestStart,
        lcp,
        api: apiEntry ? apiEntry.responseEnd : NaN,
        scripts: [nav, ...scripts].filter((r) => r.name.endsWith('.js')).map((r) => r.name),
      });
    };
    // LCP is final once the page is idle for a moment after the list rendered.
    const wait = () => (document.querySelector('[aria-label="Projects"], main h1') ? setTimeout(done, 300) : setTimeout(wait, 20));
    wait();
  });

async function main() {
  // One account with a few projects: the projects page is the signed-in landing page.
  const email = `pageload-${randomBytes(4).toString('hex')}@example.com`;
  const password = `${randomBytes(12).toString('hex')} quartz harbor lantern`;
  await api('/auth/register', { email, password, name: 'Speedy Reader' });
  const login = await api('/auth/login', { email, password });
  for (let i = 0; i < 5; i++) await api('/api/projects', { name: `Project ${i}`, description: 'for S13' }, login.access_token);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  // Sign in once through the UI to get the refresh cookie; every run then starts from it.
  const seed = await browser.newContext();
  const page = await seed.newPage();
  await page.goto(`${base}/login`);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Projects' }).waitFor();
  const state = await seed.storageState();
  await seed.close();

  const cold = [];
  const warm = [];
  let scripts = new Set();
  for (let i = 0; i < runs + 3; i++) {
    const ctx = await browser.newContext({ storageState: state });
    const p = await ctx.newPage();
    await p.goto(`${base}/projects`, { waitUntil: 'commit' });
    const c = await p.evaluate(PROBE);
    // The refresh rotated the cookie: keep the newest for the next context.
    Object.assign(state, await ctx.storageState());
    await p.reload({ waitUntil: 'commit' });
    const w = await p.evaluate(PROBE);
    Object.assign(state, await ctx.storageState());
    if (i >= 3) {
      cold.push(c);
      warm.push(w);
    }
    c.scripts.forEach((s) => scripts.add(s));
    await ctx.close();
  }
  await browser.close();

  let jsGzip = 0;
  let jsRaw = 0;
  for (const url of scripts) {
    const body = Buffer.from(await (await fetch(url)).arrayBuffer());
    jsRaw += body.length;
    jsGzip += gzipSync(body, { level: 9 }).length;
  }

  const rows = [
    ['TTFB (ms)', 'ttfb', 50],
    ['LCP (ms)', 'lcp', 500],
    ['first API answer (ms)', 'api', null],
  ];
  console.log(`S13 page load, ${runs} runs each (after 3 warm-up), ${base}`);
  console.log('| measure | cold p50 | cold p95 | cold max | warm p50 | warm p95 | warm max | target |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const [label, key, target] of rows) {
    const c = cold.map((r) => r[key]);
    const w = warm.map((r) => r[key]);
    console.log(
      `| ${label} | ${fmt(pct(c, 50))} | ${fmt(pct(c, 95))} | ${fmt(Math.max(...c))} | ${fmt(pct(w, 50))} | ${fmt(pct(w, 95))} | ${fmt(Math.max(...w))} | ${target === null ? '–' : `≤ ${target}`} |`,
    );
  }
  console.log(`\nJavaScript fetched by a first load: ${scripts.size} file(s), ${(jsRaw / 1024).toFixed(1)} KiB raw, ` +
    `${(jsGzip / 1024).toFixed(1)} KiB gzip (target ≤ 200 KB gzip)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
