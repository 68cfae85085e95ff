// Tests for the audit-log filter form (validation, URL ↔ form) and the details preview.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { detailsPreview, filtersFromForm, formFromFilters } from './auditForm';

beforeAll(() => {
  vi.stubEnv('TZ', 'UTC');
});
afterAll(() => {
  vi.unstubAllEnvs();
});

const ID = '01a2111f-424d-72a8-bf2f-5e347bc6cdec';

describe('filtersFromForm', () => {
  it('turns local times into an inclusive RFC 3339 range', () => {
    expect(filtersFromForm({ action: ' task.created ', actor: ID.toUpperCase(), from: '2026-11-01T08:00', to: '2026-11-02T09:30' })).toEqual({
      filters: { action: 'task.created', actor_id: ID, from: '2026-11-01T08:00:00Z', to: '2026-11-02T09:30:59.999Z' },
    });
    expect(filtersFromForm({ action: '', actor: '', from: '', to: '' })).toEqual({ filters: { action: '', actor_id: '', from: '', to: '' } });
  });

  it('reports bad fields', () => {
    const result = filtersFromForm({ action: 'drop table;', actor: 'bob', from: '2026-11-02T10:00', to: '2026-11-01T10:00' });
    expect(result).toEqual({
      errors: {
        action: expect.any(String),
        actor: expect.stringMatching(/UUID/),
        to: '“To” must be after “From”.',
      },
    });
    expect(filtersFromForm({ action: '', actor: '', from: '2026-02-31T10:00', to: '' })).toEqual({ errors: { from: 'Enter a valid date and time.' } });
  });
});

describe('formFromFilters', () => {
  it('shows the URL filters in the form', () => {
    expect(formFromFilters({ action: 'a.b', actor_id: ID, from: '2026-11-01T08:00:00Z', to: '2026-11-02T09:30:59.999Z' })).toEqual({
      action: 'a.b',
      actor: ID,
      from: '2026-11-01T08:00',
      to: '2026-11-02T09:30',
    });
  });
});

describe('detailsPreview', () => {
  it('lists the first keys', () => {
    expect(detailsPreview({ a: 1, b: 2 })).toBe('a, b');
    expect(detailsPreview({ a: 1, b: 2, c: 3, d: 4, e: 5 })).toBe('a, b, c, +2');
    expect(detailsPreview({})).toBe('empty');
    expect(detailsPreview(null)).toBe('none');
    expect(detailsPreview([1, 2])).toBe('2 items');
    expect(detailsPreview('text')).toBe('text');
  });
});
