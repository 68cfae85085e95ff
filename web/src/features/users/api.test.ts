// Tests for how a user lookup turns into what the page shows.
import { describe, expect, it } from 'vitest';
import { ApiError } from '@/lib/api';
import { nameOf } from './api';

const problem = (status: number) => new ApiError({ type: 'about:blank', title: 't', status });

describe('nameOf', () => {
  it('shows the name, a stand-in for a gone user, or nothing while loading', () => {
    expect(nameOf({ data: { id: 'u', name: 'Ada' }, error: null })).toBe('Ada');
    expect(nameOf({ data: undefined, error: problem(404) })).toBe('Former member');
    expect(nameOf({ data: undefined, error: problem(503) })).toBe('Unknown user');
    expect(nameOf({ data: undefined, error: null })).toBeUndefined();
    expect(nameOf(undefined)).toBeUndefined();
  });
});
