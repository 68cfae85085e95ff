// Tests for the keyboard-move helpers.
import { describe, expect, it } from 'vitest';
import { nearestIndex, sideColumn } from './keyboard';

describe('keyboard moves', () => {
  it('nearestIndex picks the closest top', () => {
    expect(nearestIndex([100, 200, 300], 190)).toBe(1);
    expect(nearestIndex([100, 200, 300], 1000)).toBe(2);
    expect(nearestIndex([], 10)).toBe(-1);
  });
  it('sideColumn stops at the edges', () => {
    expect(sideColumn('todo', 'right')).toBe('in_progress');
    expect(sideColumn('done', 'right')).toBeNull();
    expect(sideColumn('todo', 'left')).toBeNull();
    expect(sideColumn('done', 'left')).toBe('in_progress');
  });
});
