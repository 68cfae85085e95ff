// Tests for due-date formatting, overdue detection and initials.
import { describe, expect, it } from 'vitest';
import { daysUntil, dueLabel, formatDay, initials, isOverdue, parseDay, todayString } from './format';

const now = new Date(2026, 10, 25, 9, 30); // 25 Nov 2026, local time

describe('dates', () => {
  it('todayString is the local calendar date', () => {
    expect(todayString(now)).toBe('2026-11-25');
    expect(todayString(new Date(2026, 0, 5, 23, 59))).toBe('2026-01-05');
  });
  it('parseDay accepts only real YYYY-MM-DD dates', () => {
    expect(parseDay('2026-02-28')?.getDate()).toBe(28);
    expect(parseDay('2026-02-30')).toBeNull();
    expect(parseDay('26-2-3')).toBeNull();
  });
  it('isOverdue: before today and not done', () => {
    expect(isOverdue('2026-11-24', 'todo', now)).toBe(true);
    expect(isOverdue('2026-11-24', 'done', now)).toBe(false);
    expect(isOverdue('2026-11-25', 'in_progress', now)).toBe(false);
    expect(isOverdue(null, 'todo', now)).toBe(false);
    expect(isOverdue('garbage', 'todo', now)).toBe(false);
  });
  it('daysUntil counts calendar days', () => {
    expect(daysUntil('2026-11-26', now)).toBe(1);
    expect(daysUntil('2026-11-20', now)).toBe(-5);
    expect(daysUntil('2027-11-25', now)).toBe(365);
  });
  it('formatDay shows the year only when it differs', () => {
    expect(formatDay('2026-11-20', now, 'en-US')).toBe('Nov 20');
    expect(formatDay('2027-01-03', now, 'en-US')).toBe('Jan 3, 2027');
    expect(formatDay('nope', now, 'en-US')).toBe('nope');
  });
  it('dueLabel', () => {
    expect(dueLabel('2026-11-25', 'todo', now, 'en-US')).toBe('Due today');
    expect(dueLabel('2026-11-26', 'todo', now, 'en-US')).toBe('Due tomorrow');
    expect(dueLabel('2026-12-24', 'todo', now, 'en-US')).toBe('Due Dec 24');
    expect(dueLabel('2026-11-02', 'todo', now, 'en-US')).toBe('Overdue · Nov 2');
    expect(dueLabel('2026-11-02', 'done', now, 'en-US')).toBe('Due Nov 2');
  });
});

describe('initials', () => {
  it('takes first and last word', () => {
    expect(initials('Ada Lovelace')).toBe('AL');
    expect(initials('  grace  brewster murray hopper ')).toBe('GH');
    expect(initials('Zoë')).toBe('Z');
    expect(initials('')).toBe('?');
    expect(initials(null)).toBe('?');
  });
});
