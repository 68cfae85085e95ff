// Tests for the search helpers: query normalisation and URLs, highlighting, result links,
// grouping, keyboard movement, status sentences and the debouncer.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  debounce,
  flattenGroups,
  groupResults,
  highlightParts,
  moveFocus,
  normalizeQuery,
  queryTerms,
  resultUrl,
  searchPageUrl,
  searchUrl,
  statusText,
} from './logic';
import type { SearchResult } from './types';

const join = (parts: { text: string }[]) => parts.map((p) => p.text).join('');
const marked = (parts: { text: string; match: boolean }[]) => parts.filter((p) => p.match).map((p) => p.text);

describe('normalizeQuery and URLs', () => {
  it('trims, collapses whitespace and clips to 200 characters', () => {
    expect(normalizeQuery('  hero \n  home ')).toBe('hero home');
    expect(normalizeQuery('x'.repeat(250))).toHaveLength(200);
    expect(normalizeQuery('   ')).toBe('');
  });

  it('builds the API and page URLs, encoded', () => {
    expect(searchUrl(' a&b ')).toBe('/api/search?q=a%26b&limit=20');
    expect(searchUrl('hero', 'c/+=', 5)).toBe('/api/search?q=hero&limit=5&cursor=c%2F%2B%3D');
    expect(searchPageUrl('hero home')).toBe('/search?q=hero+home');
    expect(searchPageUrl('  ')).toBe('/search');
  });

  it('splits terms on anything but letters and digits', () => {
    expect(queryTerms("Hero's home-page 2025 café")).toEqual(['hero', 's', 'home', 'page', '2025', 'café']);
    expect(queryTerms('@@ !')).toEqual([]);
  });
});

describe('highlightParts', () => {
  it('marks the last word as a prefix, case-insensitively', () => {
    const parts = highlightParts('The Homepage hero', 'home');
    expect(parts).toEqual([
      { text: 'The ', match: false },
      { text: 'Home', match: true },
      { text: 'page hero', match: false },
    ]);
  });

  it('marks earlier words only as whole words', () => {
    const parts = highlightParts('homepage hero, heroic home', 'home hero');
    expect(marked(parts)).toEqual(['hero', 'hero', 'home']);
    expect(join(parts)).toBe('homepage hero, heroic home');
  });

  it('only matches at the start of a word', () => {
    expect(marked(highlightParts('superhero hero', 'hero'))).toEqual(['hero']);
  });

  it('keeps markup-like text as plain text (React escapes it)', () => {
    const text = 'Add a table for plans & <script>alert(1)</script>';
    const parts = highlightParts(text, 'script');
    expect(join(parts)).toBe(text);
    expect(marked(parts)).toEqual(['script', 'script']);
  });

  it('handles accents, digits and the snippet ellipsis', () => {
    expect(marked(highlightParts('…Café 2025 plans', 'cafe 20'))).toEqual(['20']);
    expect(marked(highlightParts('…Café 2025 plans', 'café'))).toEqual(['Café']);
  });

  it('merges neighbouring parts and always joins back into the text', () => {
    for (const [text, q] of [
      ['hero hero', 'hero'],
      ['', 'hero'],
      ['no match here', 'zzz'],
      ['emoji 🎉 party', 'par'],
      ['a-b-c', 'b'],
    ] as const) {
      const parts = highlightParts(text, q);
      expect(join(parts)).toBe(text);
      for (let i = 1; i < parts.length; i++) expect(parts[i]?.match).not.toBe(parts[i - 1]?.match);
    }
  });

  it('marks nothing for an empty or word-less query', () => {
    expect(highlightParts('hero', '')).toEqual([{ text: 'hero', match: false }]);
    expect(highlightParts('hero', '!!')).toEqual([{ text: 'hero', match: false }]);
    expect(highlightParts('', '')).toEqual([]);
  });
});

const r = (kind: SearchResult['kind'], id: string, extra: Partial<SearchResult> = {}): SearchResult => ({
  kind,
  id,
  project_id: 'p1',
  task_id: kind === 'project' ? undefined : 't1',
  title: id,
  snippet: '',
  rank: 1,
  ...extra,
});

describe('resultUrl', () => {
  it('leads a project to its board, a task to itself, a comment to its task', () => {
    expect(resultUrl(r('project', 'p1'))).toBe('/projects/p1');
    expect(resultUrl(r('task', 't9', { task_id: 't9' }))).toBe('/projects/p1/tasks/t9');
    expect(resultUrl(r('comment', 'c1', { task_id: 't7' }))).toBe('/projects/p1/tasks/t7');
  });

  it('falls back to the board for a comment without a task', () => {
    expect(resultUrl(r('comment', 'c1', { task_id: null }))).toBe('/projects/p1');
  });
});

describe('groupResults', () => {
  it('groups by kind in a fixed order, keeping rank order within a group', () => {
    const groups = groupResults([r('task', 'a'), r('comment', 'b'), r('project', 'c'), r('task', 'd')]);
    expect(groups.map((g) => [g.heading, g.items.map((i) => i.id)])).toEqual([
      ['Projects', ['c']],
      ['Tasks', ['a', 'd']],
      ['Comments', ['b']],
    ]);
    expect(flattenGroups(groups).map((i) => i.id)).toEqual(['c', 'a', 'd', 'b']);
  });

  it('drops duplicates and unknown kinds, and leaves out empty groups', () => {
    const groups = groupResults([r('task', 'a'), r('task', 'a'), r('label' as never, 'x')]);
    expect(groups).toHaveLength(1);
    expect(groups[0]?.items).toHaveLength(1);
    expect(groupResults([])).toEqual([]);
  });
});

describe('moveFocus', () => {
  it('moves from the field into the list and back, without wrapping', () => {
    expect(moveFocus(-1, 'ArrowDown', 3)).toBe(0);
    expect(moveFocus(0, 'ArrowDown', 3)).toBe(1);
    expect(moveFocus(2, 'ArrowDown', 3)).toBe(2);
    expect(moveFocus(0, 'ArrowUp', 3)).toBe(-1);
    expect(moveFocus(-1, 'ArrowUp', 3)).toBe(-1);
  });

  it('jumps to the ends inside the list only, and ignores other keys', () => {
    expect(moveFocus(1, 'Home', 3)).toBe(0);
    expect(moveFocus(1, 'End', 3)).toBe(2);
    expect(moveFocus(-1, 'Home', 3)).toBeNull();
    expect(moveFocus(1, 'a', 3)).toBeNull();
    expect(moveFocus(-1, 'ArrowDown', 0)).toBeNull();
  });
});

describe('statusText', () => {
  const base = { query: 'hero', searching: false, error: false, count: 0, more: false };
  it('says what is happening', () => {
    expect(statusText({ ...base, query: '' })).toBe('');
    expect(statusText({ ...base, searching: true })).toBe('Searching…');
    expect(statusText({ ...base, error: true })).toBe('Search failed.');
    expect(statusText(base)).toBe('No results for “hero”.');
    expect(statusText({ ...base, count: 1 })).toBe('1 result for “hero”.');
    expect(statusText({ ...base, count: 20, more: true })).toBe('20+ results for “hero”.');
  });
});

describe('debounce', () => {
  afterEach(() => vi.useRealTimers());

  it('calls once with the last arguments after the pause', () => {
    vi.useFakeTimers();
    const fn = vi.fn();
    const d = debounce(fn, 200);
    d('h');
    vi.advanceTimersByTime(150);
    d('he');
    vi.advanceTimersByTime(150);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(50);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(fn).toHaveBeenCalledWith('he');
  });

  it('can be cancelled', () => {
    vi.useFakeTimers();
    const fn = vi.fn();
    const d = debounce(fn, 200);
    d('x');
    d.cancel();
    vi.advanceTimersByTime(500);
    expect(fn).not.toHaveBeenCalled();
  });
});
