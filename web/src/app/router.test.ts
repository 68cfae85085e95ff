// Tests for the router's path normalisation and the query retry policy.
import { describe, expect, it } from 'vitest';
import { ApiError } from '@/lib/api';
import { isSameLocation, matchPath, normalizePath, safeNext } from './router';
import { shouldRetry } from './App';

describe('normalizePath', () => {
  it('strips trailing slashes, queries and hashes', () => {
    expect(normalizePath('/')).toBe('/');
    expect(normalizePath('')).toBe('/');
    expect(normalizePath('/projects/')).toBe('/projects');
    expect(normalizePath('/login?next=x')).toBe('/login');
    expect(normalizePath('/register#top')).toBe('/register');
    expect(normalizePath('///')).toBe('/');
  });
});

describe('shouldRetry', () => {
  const problem = (status: number) => new ApiError({ type: 'about:blank', title: 't', status });
  it('never retries client errors', () => {
    expect(shouldRetry(0, problem(401))).toBe(false);
    expect(shouldRetry(0, problem(404))).toBe(false);
  });
  it('retries server and network errors twice', () => {
    expect(shouldRetry(0, problem(503))).toBe(true);
    expect(shouldRetry(1, problem(0))).toBe(true);
    expect(shouldRetry(2, problem(503))).toBe(false);
  });
});

describe('matchPath', () => {
  it('reads parameters, decoded', () => {
    expect(matchPath('/projects/:id', '/projects/abc')).toEqual({ id: 'abc' });
    expect(matchPath('/projects/:id/tasks/:taskId', '/projects/p%201/tasks/t/')).toEqual({ id: 'p 1', taskId: 't' });
    expect(matchPath('/admin', '/admin')).toEqual({});
  });
  it('needs every segment to match', () => {
    expect(matchPath('/projects/:id', '/projects')).toBeNull();
    expect(matchPath('/projects/:id', '/projects/a/b')).toBeNull();
    expect(matchPath('/projects/:id/list', '/projects/a/board')).toBeNull();
    expect(matchPath('/projects/:id', '/projects/%E0%A4%A')).toBeNull();
  });
});

describe('safeNext', () => {
  it('keeps same-app paths only', () => {
    expect(safeNext('/projects/a?x=1')).toBe('/projects/a?x=1');
    expect(safeNext(null)).toBe('/projects');
    expect(safeNext('https://evil.example')).toBe('/projects');
    expect(safeNext('//evil.example')).toBe('/projects');
    expect(safeNext('/\\evil.example')).toBe('/projects');
  });
});

describe('isSameLocation', () => {
  it('compares path, query and fragment', () => {
    expect(isSameLocation('/projects/', '/projects')).toBe(true);
    expect(isSameLocation('/search?q=a', '/search?q=a')).toBe(true);
    expect(isSameLocation('/search?q=b', '/search?q=a')).toBe(false);
    expect(isSameLocation('/search', '/search?q=a')).toBe(false);
    expect(isSameLocation('/reset-password#token=x', '/reset-password')).toBe(false);
  });
});
