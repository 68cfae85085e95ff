// Unit tests of the marked side of the Markdown renderer (link rewriting, images, mentions);
// the DOMPurify side needs a browser and is checked in Chromium.
import { describe, expect, it } from 'vitest';
import { escapeHtml, markdownToHtml, safeHref, safeImageSrc } from './markdown';

describe('safeHref', () => {
  it('keeps http(s), mailto and relative links', () => {
    expect(safeHref('https://example.com/a?b=1')).toBe('https://example.com/a?b=1');
    expect(safeHref('HTTP://example.com')).toBe('HTTP://example.com');
    expect(safeHref('mailto:ada@example.com')).toBe('mailto:ada@example.com');
    expect(safeHref('/projects/1')).toBe('/projects/1');
    expect(safeHref('#part')).toBe('#part');
  });
  it('refuses script schemes, however disguised', () => {
    expect(safeHref('javascript:alert(1)')).toBeNull();
    expect(safeHref('JaVaScRiPt:alert(1)')).toBeNull();
    expect(safeHref(' java\tscript:alert(1)')).toBeNull();
    expect(safeHref('java\u0000script:alert(1)')).toBeNull();
    expect(safeHref('vbscript:x')).toBeNull();
    expect(safeHref('data:text/html,<script>alert(1)</script>')).toBeNull();
    expect(safeHref('//evil.example/x')).toBeNull();
    expect(safeHref('')).toBeNull();
    expect(safeHref(undefined)).toBeNull();
  });
});

describe('safeImageSrc', () => {
  it('allows raster data: images only', () => {
    expect(safeImageSrc('data:image/png;base64,AAAA')).toBe('data:image/png;base64,AAAA');
    expect(safeImageSrc('data:image/svg+xml;base64,AAAA')).toBeNull();
    expect(safeImageSrc('https://example.com/a.png')).toBeNull();
    expect(safeImageSrc('x')).toBeNull();
  });
});

describe('markdownToHtml', () => {
  it('opens links in a new tab without an opener or referrer', () => {
    const html = markdownToHtml('[site](https://example.com "The site")');
    expect(html).toContain('<a href="https://example.com" title="The site" target="_blank" rel="noopener noreferrer">site</a>');
  });
  it('rewrites autolinks and bare URLs too', () => {
    expect(markdownToHtml('<https://example.com>')).toContain('target="_blank" rel="noopener noreferrer"');
    expect(markdownToHtml('see https://example.com/x now')).toContain(
      '<a href="https://example.com/x" target="_blank" rel="noopener noreferrer">https://example.com/x</a>',
    );
  });
  it('drops javascript: links, keeping their text', () => {
    const html = markdownToHtml('[x](javascript:alert(1))');
    expect(html).not.toContain('href');
    expect(html).not.toMatch(/javascript:/i);
    expect(html).toContain('<span class="unsafe-link">x</span>');
  });
  it('escapes quotes in link targets and titles', () => {
    const html = markdownToHtml('[x](https://example.com/"onmouseover="alert(1) "a\\"b")');
    expect(html).not.toContain('" onmouseover');
    expect(html).not.toMatch(/"\s*onmouseover=/);
  });
  it('turns remote images into links and keeps data: images', () => {
    expect(markdownToHtml('![diagram](https://example.com/d.png)')).toContain(
      '<a href="https://example.com/d.png" target="_blank" rel="noopener noreferrer">Image: diagram</a>',
    );
    expect(markdownToHtml('![dot](data:image/png;base64,iVBORw0KGgo=)')).toContain('<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot">');
    expect(markdownToHtml('![bad](javascript:alert(1))')).not.toContain('javascript');
  });
  it('renders GFM: headings (three levels down), lists, tables, code, line breaks', () => {
    const html = markdownToHtml('# Plan\n\n- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n```\ncode <b>\n```\n\nline one\nline two');
    expect(html).toContain('<h4 class="md-h1">Plan</h4>');
    expect(markdownToHtml('#### Deep')).toContain('<h6 class="md-h4">Deep</h6>');
    expect(html).toContain('<li>a</li>');
    expect(html).toContain('<table>');
    expect(html).toContain('code &lt;b&gt;');
    expect(html).toContain('line one<br>line two');
  });
  it('shows mentions as @Name, escaped', () => {
    const id = '01a2111f-7e82-7038-8d26-0ad63af36ce9';
    const names: Record<string, string | undefined> = { [id]: 'Eddie <Editor>' };
    const html = markdownToHtml(`hi <@${id}>!`, { mentionName: (u) => names[u] });
    expect(html).toContain(`<span class="mention" data-user-id="${id}">@Eddie &lt;Editor&gt;</span>!`);
    expect(markdownToHtml(`<@${id}>`)).toContain('@someone');
    // Not a mention inside code.
    expect(markdownToHtml(`\`<@${id}>\``)).toContain(`<code>&lt;@${id}&gt;</code>`);
  });
});

describe('escapeHtml', () => {
  it('escapes the five specials', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
