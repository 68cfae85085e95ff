// Property-based fuzzing of the Markdown rendering rules (docs/SECURITY.md SC-3): random
// Markdown built from the pieces attacks are made of (disguised schemes, entities, nested
// brackets, autolinks, reference links, images, mentions) must never make the marked side emit a
// link or image the browser would resolve to a script, data or other unsafe URL, and the two URL
// rules themselves must agree with the browser's URL parser (WHATWG, as in Node). Raw HTML in
// the source is DOMPurify's to clean (checked in Chromium by the browser suite), so sources that
// contain HTML tokens skip the output checks but must still render.
//
// Cases: FUZZ_CASES (default 400 per property; `FUZZ_CASES=100000 npx vitest run markdown.fuzz`
// for a long run); FUZZ_SEED replays a run (printed on failure).
import { describe, expect, it } from 'vitest';
import { Marked, type Token } from 'marked';
import { markdownToHtml, safeHref, safeImageSrc } from './markdown';

// Node's environment, without depending on Node's types in the app's type check.
const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const CASES = Number(env.FUZZ_CASES ?? 400);
const SEED = Number(env.FUZZ_SEED ?? Date.now() % 2 ** 31);

/** mulberry32: a small seeded generator, so a failing case can be replayed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HREFS = [
  'javascript:alert(1)',
  'JaVaScRiPt:alert(1)',
  'java\tscript:alert(1)',
  ' java\nscript:alert(1)',
  'java\u0000script:x',
  'javascript&#58;alert(1)',
  'javascript&colon;alert(1)',
  '&#106;avascript:alert(1)',
  'jav&#x09;ascript:alert(1)',
  '%6Aavascript:alert(1)',
  'vbscript:x',
  'data:text/html,<script>alert(1)</script>',
  'data:image/svg+xml;base64,PHN2Zz4=',
  'data:image/png;base64,iVBORw0KGgo=',
  'DATA:image/gif;base64,R0lGOD',
  'https://example.com/a?b=1&c=2',
  'http://example.com',
  'mailto:ada@example.com',
  '//evil.example/x',
  '\\\\evil.example\\x',
  '/\\evil.example',
  '\\/evil.example',
  '/projects/1',
  '#part',
  'page',
  'https:evil.example',
  'file:///etc/passwd',
  'blob:https://x/y',
  '\u200bjavascript:alert(1)',
  'java\u00adscript:alert(1)',
];
const PIECES = ['[', ']', '(', ')', '!', '<', '>', '"', "'", '&', '`', '*', '_', '#', '-', '|', ':', ' ', '\n', '\n\n', 'a', 'b c', 'é', '\\', '\t'];
const MENTION = '<@0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b>';

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function href(r: () => number): string {
  const h = pick(r, HREFS);
  // Sometimes wrapped in angle brackets (a destination with spaces) or split by a piece.
  const roll = r();
  if (roll < 0.15) return `<${h}>`;
  if (roll < 0.3) return h.slice(0, 3) + pick(r, PIECES) + h.slice(3);
  return h;
}

function fragment(r: () => number, depth = 0): string {
  const roll = r();
  const text = () => (depth < 2 && r() < 0.3 ? fragment(r, depth + 1) : pick(r, ['x', 'click', 'a b', '**b**', '`c`']));
  if (roll < 0.2) return `[${text()}](${href(r)}${r() < 0.3 ? ` "t${pick(r, PIECES)}"` : ''})`;
  if (roll < 0.32) return `![${text()}](${href(r)})`;
  if (roll < 0.4) return `<${pick(r, HREFS)}>`;
  if (roll < 0.48) return `[${text()}][r]\n\n[r]: ${href(r)}\n`;
  if (roll < 0.53) return MENTION;
  if (roll < 0.58) return pick(r, HREFS);
  if (roll < 0.63) return `${pick(r, ['# ', '- ', '> ', '1. ', '| a | b |\n|---|---|\n| ', '```\n'])}${text()}`;
  return pick(r, PIECES);
}

function markdown(r: () => number): string {
  const n = 1 + Math.floor(r() * 8);
  return Array.from({ length: n }, () => fragment(r)).join(r() < 0.5 ? '' : ' ');
}

/** Where a browser would go: the URL an attribute value resolves to, or null if none. */
function resolved(value: string): URL | null {
  try {
    return new URL(value, 'https://app.example/projects/1');
  } catch {
    return null;
  }
}

function decodeEntities(s: string): string {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

const SAFE_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
const RASTER = /^data:image\/(png|gif|jpe?g|webp|avif);/i;

const lexer = new Marked({ gfm: true, breaks: true });
function hasRawHtml(source: string): boolean {
  let found = false;
  const tokens = lexer.lexer(source);
  lexer.walkTokens(tokens, (t: Token) => {
    if (t.type === 'html') found = true;
  });
  return found;
}

function forEachCase(name: string, property: (r: () => number, i: number) => void) {
  it(`${name} (${CASES} cases, FUZZ_SEED=${SEED})`, () => {
    const r = rng(SEED ^ name.length);
    for (let i = 0; i < CASES; i++) property(r, i);
  }, Math.max(5000, CASES * 5));
}

describe('Markdown rendering rules, fuzzed', () => {
  forEachCase('safeHref keeps only what a browser resolves to http(s) or mailto', (r) => {
    const input = r() < 0.7 ? href(r) : markdown(r);
    const out = safeHref(input);
    if (out === null) return;
    const url = resolved(out);
    if (url) expect(SAFE_PROTOCOLS.has(url.protocol), `${JSON.stringify(input)} → ${url.href}`).toBe(true);
    if (url && !/^[a-z][a-z0-9+.-]*:/i.test(out.replace(/[\u0000-\u0020\u007f]/g, ''))) {
      // A relative reference stays on this site.
      expect(url.origin, JSON.stringify(input)).toBe('https://app.example');
    }
  });

  forEachCase('safeImageSrc keeps only raster data: images', (r) => {
    const input = r() < 0.8 ? pick(r, HREFS) + pick(r, PIECES) : markdown(r);
    const out = safeImageSrc(input);
    if (out === null) return;
    expect(RASTER.test(out), JSON.stringify(input)).toBe(true);
    expect(resolved(out)?.protocol).toBe('data:');
  });

  forEachCase('rendered links and images are safe, whatever the Markdown', (r) => {
    const source = markdown(r);
    const html = markdownToHtml(source, { mentionName: () => '<b>"Ada"</b>' });
    expect(typeof html).toBe('string');
    if (hasRawHtml(source)) return; // DOMPurify's part, checked in the browser
    for (const m of html.matchAll(/<a\b[^>]*\bhref="([^"]*)"/g)) {
      const url = resolved(decodeEntities(m[1]!));
      if (url) expect(SAFE_PROTOCOLS.has(url.protocol), `${JSON.stringify(source)} → ${m[0]}`).toBe(true);
    }
    for (const m of html.matchAll(/<img\b[^>]*\bsrc="([^"]*)"/g)) {
      expect(RASTER.test(decodeEntities(m[1]!)), `${JSON.stringify(source)} → ${m[0]}`).toBe(true);
    }
    for (const m of html.matchAll(/<a\b[^>]*>/g)) {
      expect(m[0], JSON.stringify(source)).toContain('rel="noopener noreferrer"');
    }
    // A mention's name is text, never markup.
    expect(html).not.toContain('<b>"Ada"</b>');
    expect(html).not.toMatch(/<script|\son[a-z]+=/i);
  });
});
