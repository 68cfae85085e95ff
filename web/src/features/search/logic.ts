// Search logic without React: query normalisation, the search URL, match highlighting (as
// plain parts for React to render, never HTML), result → link mapping, grouping by kind, and
// keyboard movement through the results.
import type { SearchKind, SearchResult } from './types';

/** The API's limit on `q` (1–200 characters). */
export const MAX_QUERY = 200;
export const SEARCH_PAGE_SIZE = 20;
/** How long typing must pause before a search is sent. */
export const DEBOUNCE_MS = 200;

/** The query as sent: trimmed, inner whitespace collapsed, at most 200 characters. */
export function normalizeQuery(raw: string): string {
  return raw.trim().replace(/\s+/g, ' ').slice(0, MAX_QUERY).trim();
}

export function searchUrl(q: string, cursor: string | null = null, limit: number = SEARCH_PAGE_SIZE): string {
  const params = new URLSearchParams({ q: normalizeQuery(q), limit: String(limit) });
  if (cursor) params.set('cursor', cursor);
  return `/api/search?${params.toString()}`;
}

/** The link of the full results page for a query. */
export function searchPageUrl(q: string): string {
  const query = normalizeQuery(q);
  return query ? `/search?${new URLSearchParams({ q: query }).toString()}` : '/search';
}

const WORD = /[\p{L}\p{M}\p{N}]+/gu;

/** The words of a query, lower-cased: runs of letters and digits (as the server splits them). */
export function queryTerms(q: string): string[] {
  return [...q.toLowerCase().matchAll(WORD)].map((m) => m[0]);
}

export type HighlightPart = { text: string; match: boolean };

/**
 * Splits `text` into parts, marking what the query matched. The server's rule: every word of
 * the query occurs as a whole word, the last one as the beginning of a word (case-insensitive).
 * The parts always join back into `text` exactly.
 */
export function highlightParts(text: string, query: string): HighlightPart[] {
  const terms = queryTerms(query);
  if (terms.length === 0 || text === '') return text === '' ? [] : [{ text, match: false }];
  const whole = new Set(terms.slice(0, -1));
  const prefix = terms[terms.length - 1] ?? '';
  whole.add(prefix);

  const parts: HighlightPart[] = [];
  const push = (chunk: string, match: boolean) => {
    if (chunk === '') return;
    const last = parts[parts.length - 1];
    if (last && last.match === match) last.text += chunk;
    else parts.push({ text: chunk, match });
  };

  let at = 0;
  for (const m of text.matchAll(WORD)) {
    const word = m[0];
    const start = m.index ?? 0;
    let length = 0;
    if (whole.has(word.toLowerCase())) length = word.length;
    else if (word.slice(0, prefix.length).toLowerCase() === prefix) length = prefix.length;
    if (length === 0) continue;
    push(text.slice(at, start), false);
    push(text.slice(start, start + length), true);
    at = start + length;
  }
  push(text.slice(at), false);
  return parts;
}

/** Where a result leads: a project's board, a task, or the task a comment belongs to. */
export function resultUrl(result: Pick<SearchResult, 'kind' | 'id' | 'project_id' | 'task_id'>): string {
  const project = `/projects/${encodeURIComponent(result.project_id)}`;
  switch (result.kind) {
    case 'project':
      return project;
    case 'task':
      return `${project}/tasks/${encodeURIComponent(result.id)}`;
    case 'comment':
      return result.task_id ? `${project}/tasks/${encodeURIComponent(result.task_id)}` : project;
    default:
      return project;
  }
}

export const KIND_ORDER: SearchKind[] = ['project', 'task', 'comment'];
export const KIND_HEADINGS: Record<SearchKind, string> = { project: 'Projects', task: 'Tasks', comment: 'Comments' };
export const KIND_LABELS: Record<SearchKind, string> = { project: 'Project', task: 'Task', comment: 'Comment' };

export type ResultGroup = { kind: SearchKind; heading: string; items: SearchResult[] };

/**
 * Groups results by kind (projects, tasks, comments; unknown kinds are dropped), keeping the
 * server's order (best first) inside each group, and each result once (pages may overlap).
 */
export function groupResults(results: SearchResult[]): ResultGroup[] {
  const seen = new Set<string>();
  const byKind = new Map<SearchKind, SearchResult[]>();
  for (const r of results) {
    const key = `${r.kind}:${r.id}`;
    if (seen.has(key) || !KIND_ORDER.includes(r.kind)) continue;
    seen.add(key);
    const list = byKind.get(r.kind) ?? [];
    list.push(r);
    byKind.set(r.kind, list);
  }
  return KIND_ORDER.flatMap((kind) => {
    const items = byKind.get(kind);
    return items ? [{ kind, heading: KIND_HEADINGS[kind], items }] : [];
  });
}

/** The results in the order they are shown (group after group), for keyboard movement. */
export function flattenGroups(groups: ResultGroup[]): SearchResult[] {
  return groups.flatMap((g) => g.items);
}

/**
 * The result to focus after a key press, from `current` (-1 = the search field) among `count`
 * results; null when the key does not move. Down from the field enters the list, up from the
 * first result returns to the field, the ends do not wrap.
 */
export function moveFocus(current: number, key: string, count: number): number | null {
  if (count === 0) return null;
  switch (key) {
    case 'ArrowDown':
      return Math.min(current + 1, count - 1);
    case 'ArrowUp':
      return Math.max(current - 1, -1);
    case 'Home':
      return current === -1 ? null : 0;
    case 'End':
      return current === -1 ? null : count - 1;
    default:
      return null;
  }
}

/** A sentence for screen readers about the state of a search. */
export function statusText(state: { query: string; searching: boolean; error: boolean; count: number; more: boolean }): string {
  if (state.query === '') return '';
  if (state.error) return 'Search failed.';
  if (state.searching) return 'Searching…';
  if (state.count === 0) return `No results for “${state.query}”.`;
  return `${state.count}${state.more ? '+' : ''} result${state.count === 1 && !state.more ? '' : 's'} for “${state.query}”.`;
}

/** Calls `fn` once calls stop for `ms`; `cancel` drops a pending call. */
export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): ((...args: A) => void) & { cancel: () => void } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const debounced = (...args: A) => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      fn(...args);
    }, ms);
  };
  debounced.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  return debounced;
}
