// Tests for the list view's filter ↔ URL ↔ API mapping.
import { describe, expect, it } from 'vitest';
import { apiParams, DEFAULT_FILTERS, filtersFromSearch, filtersToSearch, hasFilters, sortParam, tasksUrl } from './filters';

const U = '01a2111f-81d2-702a-8ea4-2a4e5904a09e';

describe('filtersFromSearch', () => {
  it('an empty query string is the defaults', () => {
    expect(filtersFromSearch(new URLSearchParams())).toEqual(DEFAULT_FILTERS);
  });
  it('reads every filter and a descending sort', () => {
    const f = filtersFromSearch(
      new URLSearchParams(`q=copy&status=done&priority=high&assignee=${U}&label=ux&due_before=2026-12-01&due_after=2026-11-01&sort=-due_date`),
    );
    expect(f).toEqual({
      q: 'copy',
      status: 'done',
      priority: 'high',
      assignee: U,
      label: 'ux',
      due_before: '2026-12-01',
      due_after: '2026-11-01',
      sort: 'due_date',
      desc: true,
    });
  });
  it('drops invalid values', () => {
    const f = filtersFromSearch(new URLSearchParams('status=later&priority=x&assignee=bob&due_before=tomorrow&sort=-title'));
    expect(f).toEqual(DEFAULT_FILTERS);
  });
});

describe('filtersToSearch', () => {
  it('leaves defaults out', () => {
    expect(filtersToSearch(DEFAULT_FILTERS).toString()).toBe('');
  });
  it('round-trips', () => {
    const f = { ...DEFAULT_FILTERS, q: 'a b', status: 'todo' as const, assignee: U, sort: 'priority' as const, desc: true };
    const s = filtersToSearch(f);
    expect(s.get('sort')).toBe('-priority');
    expect(filtersFromSearch(new URLSearchParams(s.toString()))).toEqual(f);
  });
  it('keeps a descending board order', () => {
    expect(filtersToSearch({ ...DEFAULT_FILTERS, desc: true }).get('sort')).toBe('-position');
  });
});

describe('apiParams / tasksUrl', () => {
  it('maps the assignee to assignee_id and always sorts', () => {
    expect(apiParams({ ...DEFAULT_FILTERS, assignee: U, label: ' ux ' })).toEqual({ sort: 'position', assignee_id: U, label: 'ux' });
    expect(sortParam({ sort: 'updated_at', desc: true })).toBe('-updated_at');
  });
  it('builds the page URL with limit and cursor', () => {
    expect(tasksUrl('p1', { sort: 'position', q: 'a&b' }, 'CUR', 25)).toBe('/api/projects/p1/tasks?sort=position&q=a%26b&limit=25&cursor=CUR');
    expect(tasksUrl('p1', { sort: 'position' }, null, 100)).toBe('/api/projects/p1/tasks?sort=position&limit=100');
  });
  it('hasFilters ignores sorting', () => {
    expect(hasFilters({ ...DEFAULT_FILTERS, sort: 'due_date', desc: true })).toBe(false);
    expect(hasFilters({ ...DEFAULT_FILTERS, due_after: '2026-01-01' })).toBe(true);
  });
});
