// Tests for the dates shown on the account pages.
import { describe, expect, it } from 'vitest';
import { formatDateTime, formatRelative } from './format';

const now = Date.parse('2026-11-25T12:00:00Z');

describe('formatRelative', () => {
  it('reads recent times as "just now"', () => {
    expect(formatRelative('2026-11-25T11:59:30Z', now, 'en')).toBe('just now');
    expect(formatRelative('2026-11-25T12:05:00Z', now, 'en')).toBe('just now');
  });
  it('uses the largest whole unit', () => {
    expect(formatRelative('2026-11-25T11:55:00Z', now, 'en')).toBe('5 minutes ago');
    expect(formatRelative('2026-11-25T09:00:00Z', now, 'en')).toBe('3 hours ago');
    expect(formatRelative('2026-11-24T11:00:00Z', now, 'en')).toBe('yesterday');
    expect(formatRelative('2026-11-04T12:00:00Z', now, 'en')).toBe('3 weeks ago');
    expect(formatRelative('2024-11-01T12:00:00Z', now, 'en')).toBe('2 years ago');
  });
  it('passes bad input through', () => {
    expect(formatRelative('not a date', now, 'en')).toBe('not a date');
  });
});

describe('formatDateTime', () => {
  it('honours the locale and time zone', () => {
    expect(formatDateTime('2026-11-25T12:00:00Z', 'en-GB', 'UTC')).toBe('25 Nov 2026, 12:00');
    expect(formatDateTime('2026-11-25T12:00:00Z', 'en-GB', 'Asia/Tokyo')).toBe('25 Nov 2026, 21:00');
  });
  it('falls back when the time zone is unknown', () => {
    expect(formatDateTime('2026-11-25T12:00:00Z', 'en-GB', 'Bogus/Zone')).toMatch(/2026/);
    expect(formatDateTime('nope', 'en')).toBe('nope');
  });
});
