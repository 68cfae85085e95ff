// Tests for the order of the sessions list.
import { describe, expect, it } from 'vitest';
import { sortSessions } from './sessions';

const s = (id: string, last: string, current = false) => ({ id, created_at: last, last_used_at: last, current });

describe('sortSessions', () => {
  it('puts this device first, then the most recently used', () => {
    const sorted = sortSessions([
      s('a', '2026-11-20T10:00:00Z'),
      s('b', '2026-11-25T10:00:00Z'),
      s('c', '2026-11-01T10:00:00Z', true),
      s('d', '2026-11-22T10:00:00Z'),
    ]);
    expect(sorted.map((x) => x.id)).toEqual(['c', 'b', 'd', 'a']);
  });
  it('does not change the input and is stable for equal times', () => {
    const input = [s('y', '2026-11-20T10:00:00Z'), s('x', '2026-11-20T10:00:00Z')];
    expect(sortSessions(input).map((x) => x.id)).toEqual(['x', 'y']);
    expect(input.map((x) => x.id)).toEqual(['y', 'x']);
  });
});
