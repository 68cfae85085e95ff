// Audit of the web app's production dependencies (docs/SECURITY.md SC-1), run by `cargo xtask
// supply-chain` after `npm ci` in web/:
//
//   node supply-chain/npm-audit.mjs            # check
//   node supply-chain/npm-audit.mjs --update   # rewrite the reviewed list after a review
//
// 1. `npm audit --omit=dev`: the registry's advisory endpoint, when it answers. Any advisory of
//    moderate severity or worse in a production dependency fails. Where the endpoint cannot be
//    reached (the registry mirror of the build machines answers it with 405, and npm's signature
//    check needs sigstore, which is not reachable either), this says so and goes on with (2)-(4),
//    which need nothing but the lockfile.
// 2. The production dependency tree (every package-lock.json entry not marked dev) must equal the
//    reviewed list supply-chain/npm-production.txt: a new, removed or changed production package
//    fails until someone has reviewed it and updated the list (`--update`).
// 3. Each of them has a sha512 integrity (which `npm ci` checks), comes from the npm registry and
//    has a licence from the allow-list.
// 4. Minimum versions that close known advisories of our production packages (FLOORS below).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const web = join(here, '..', 'web');
const reviewedPath = join(here, 'npm-production.txt');
const REGISTRY = 'https://registry.npmjs.org/';
// Permissive licences compatible with Apache-2.0; an SPDX "A OR B" passes when one of them does.
const LICENCES = new Set(['MIT', 'Apache-2.0', 'ISC', '0BSD', 'BSD-2-Clause', 'BSD-3-Clause']);
// Versions below these have published advisories (GitHub advisory ids).
const FLOORS = {
  dompurify: ['3.2.4', 'GHSA-vhxf-7vqr-mrjg (mXSS, CVE-2025-26791)'],
  marked: ['4.0.10', 'GHSA-rrrm-qjm4-v8hf, GHSA-5v2h-r2cx-5xgj (ReDoS)'],
};
const BLOCKING = ['moderate', 'high', 'critical'];

const failures = [];

function registryAudit() {
  let out;
  try {
    out = execFileSync('npm', ['audit', '--omit=dev', '--json'], { cwd: web, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    // npm audit exits 1 both when it finds something and when the endpoint fails.
    out = e.stdout ?? '';
  }
  let report;
  try {
    report = JSON.parse(out);
  } catch {
    return 'npm audit gave no report';
  }
  const counts = report.metadata?.vulnerabilities;
  if (!counts) {
    const why = report.message ?? report.error?.summary ?? report.error?.code ?? 'no counts';
    return `the registry's advisory endpoint answered ${JSON.stringify(why)}`;
  }
  const found = BLOCKING.map((s) => [s, counts[s] ?? 0]).filter(([, n]) => n > 0);
  if (found.length > 0) {
    const names = Object.keys(report.vulnerabilities ?? {}).join(', ');
    failures.push(`npm audit: ${found.map(([s, n]) => `${n} ${s}`).join(', ')} in production dependencies (${names}); run \`npm audit --omit=dev\` in web/`);
  } else {
    console.log(`npm audit --omit=dev: no advisory of moderate severity or worse (${report.metadata.dependencies?.prod ?? '?'} production packages)`);
  }
  return null;
}

function productionPackages() {
  const lock = JSON.parse(readFileSync(join(web, 'package-lock.json'), 'utf8'));
  return Object.entries(lock.packages ?? {})
    .filter(([path, p]) => path !== '' && !p.dev && !p.devOptional)
    .map(([path, p]) => ({ name: p.name ?? path.replace(/^.*node_modules\//, ''), path, ...p }))
    .sort((a, b) => a.path.localeCompare(b.path));
}

function line(p) {
  return `${p.name} ${p.version} ${p.license ?? 'UNKNOWN'}`;
}

function licenceAllowed(spdx) {
  if (!spdx) return false;
  return spdx
    .replace(/[()]/g, '')
    .split(/\s+OR\s+/)
    .some((alt) => alt.split(/\s+AND\s+/).every((l) => LICENCES.has(l.trim())));
}

function newer(version, floor) {
  const a = version.split(/[.+-]/).map(Number);
  const b = floor.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

const packages = productionPackages();
const current = packages.map(line);

if (process.argv.includes('--update')) {
  writeFileSync(
    reviewedPath,
    '# The web app\'s production dependencies as reviewed (name version licence), from web/package-lock.json.\n' +
      '# Rewritten by `node supply-chain/npm-audit.mjs --update` after a review; checked by `cargo xtask supply-chain`.\n' +
      current.join('\n') +
      '\n',
  );
  console.log(`wrote ${reviewedPath} (${current.length} packages)`);
  process.exit(0);
}

const unavailable = registryAudit();
if (unavailable) {
  console.log(
    `npm audit --omit=dev cannot run here: ${unavailable}. ` +
      'Checking the production dependencies against the reviewed list, their sources, licences and known minimum versions instead.',
  );
}

const reviewed = readFileSync(reviewedPath, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '' && !l.startsWith('#'));
const added = current.filter((l) => !reviewed.includes(l));
const removed = reviewed.filter((l) => !current.includes(l));
if (added.length || removed.length) {
  failures.push(
    `production dependencies differ from the reviewed list ${reviewedPath}:` +
      added.map((l) => `\n  + ${l}`).join('') +
      removed.map((l) => `\n  - ${l}`).join('') +
      '\n  review them, then run `node supply-chain/npm-audit.mjs --update`',
  );
}
for (const p of packages) {
  // The lockfile may omit `resolved` (then the registry is npm's default); another source fails.
  if ((p.resolved && !p.resolved.startsWith(REGISTRY)) || !p.integrity?.startsWith('sha512-')) {
    failures.push(`${p.name} ${p.version}: not from ${REGISTRY} with a sha512 integrity`);
  }
  if (!licenceAllowed(p.license)) failures.push(`${p.name} ${p.version}: licence ${p.license ?? 'unknown'} is not allowed`);
  const floor = FLOORS[p.name];
  if (floor && !newer(p.version, floor[0])) failures.push(`${p.name} ${p.version}: older than ${floor[0]}, ${floor[1]}`);
}

if (failures.length) {
  console.error(failures.map((f) => `npm-audit: ${f}`).join('\n'));
  process.exit(1);
}
console.log(`web app production dependencies: ${packages.length} packages reviewed, from the registry, allowed licences, above known-advisory floors`);
