// Tests for datetime-local ↔ RFC 3339 conversion (in a fixed time zone with summer time).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isRfc3339, localInputToRfc3339, rfc3339ToLocalInput } from './datetime';

beforeAll(() => {
  vi.stubEnv('TZ', 'Europe/Berlin');
});
afterAll(() => {
  vi.unstubAllEnvs();
});

describe('localInputToRfc3339', () => {
  it('converts local wall time to UTC', () => {
    expect(localInputToRfc3339('2026-01-15T10:30')).toBe('2026-01-15T09:30:00Z'); // CET, +01:00
    expect(localInputToRfc3339('2026-07-15T10:30')).toBe('2026-07-15T08:30:00Z'); // CEST, +02:00
    expect(localInputToRfc3339('2026-01-01T00:15')).toBe('2025-12-31T23:15:00Z');
    expect(localInputToRfc3339('2026-01-15T10:30:45')).toBe('2026-01-15T09:30:45Z');
  });

  it('can give the end of the minute (an inclusive upper bound)', () => {
    expect(localInputToRfc3339('2026-01-15T10:30', true)).toBe('2026-01-15T09:30:59.999Z');
  });

  it('refuses empty and impossible values', () => {
    expect(localInputToRfc3339('')).toBeNull();
    expect(localInputToRfc3339('2026-02-30T10:00')).toBeNull();
    expect(localInputToRfc3339('2026-01-15T25:00')).toBeNull();
    expect(localInputToRfc3339('yesterday')).toBeNull();
  });
});

describe('rfc3339ToLocalInput', () => {
  it('shows a UTC instant in local wall time', () => {
    expect(rfc3339ToLocalInput('2026-01-15T09:30:00Z')).toBe('2026-01-15T10:30');
    expect(rfc3339ToLocalInput('2026-07-15T08:30:59.999Z')).toBe('2026-07-15T10:30');
    expect(rfc3339ToLocalInput('2026-07-15T10:30:00+02:00')).toBe('2026-07-15T10:30');
    expect(rfc3339ToLocalInput('')).toBe('');
    expect(rfc3339ToLocalInput('nonsense')).toBe('');
  });

  it('round-trips', () => {
    for (const local of ['2026-03-29T01:59', '2026-10-25T04:00', '2026-12-31T23:59']) {
      expect(rfc3339ToLocalInput(localInputToRfc3339(local)!)).toBe(local);
    }
  });
});

describe('isRfc3339', () => {
  it('accepts instants with an offset only', () => {
    expect(isRfc3339('2026-01-15T09:30:00Z')).toBe(true);
    expect(isRfc3339('2026-01-15T09:30:00.123+02:00')).toBe(true);
    expect(isRfc3339('2026-01-15T09:30')).toBe(false);
    expect(isRfc3339('2026-01-15')).toBe(false);
  });
});
