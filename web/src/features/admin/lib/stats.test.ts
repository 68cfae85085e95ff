// Tests for shaping the admin statistics into chart series and tiles.
import { describe, expect, it } from 'vitest';
import type { AdminStats } from '../types';
import { periodLabels, rangeLabel, shapeStats, statsTiles } from './stats';

const stats: AdminStats = {
  period: 'week',
  from: '2026-11-16',
  to: '2026-11-29',
  buckets: [
    { start: '2026-11-16', signups: 2, active_users: 5, projects_created: 1, tasks_created: 4, tasks_completed: 1 },
    { start: '2026-11-23', signups: 1, active_users: 3, projects_created: 0, tasks_created: 2, tasks_completed: 0 },
  ],
  totals: { signups: 3, active_users: 6, projects_created: 1, tasks_created: 6, tasks_completed: 1 },
};

describe('shapeStats', () => {
  it('gives one label and one value per bucket', () => {
    expect(shapeStats(stats, 'en-GB')).toEqual({
      labels: ['16 Nov', '23 Nov'],
      longLabels: ['Week of 16 Nov 2026', 'Week of 23 Nov 2026'],
      signups: [2, 1],
      activeUsers: [5, 3],
    });
  });

  it('labels days in UTC whatever the local zone', () => {
    expect(periodLabels('2026-01-01', 'day', 'en-GB')).toEqual({ short: '1 Jan', long: '1 Jan 2026' });
    expect(periodLabels('garbage', 'day', 'en-GB')).toEqual({ short: 'garbage', long: 'garbage' });
  });

  it('handles an empty range', () => {
    expect(shapeStats({ ...stats, buckets: [] })).toEqual({ labels: [], longLabels: [], signups: [], activeUsers: [] });
  });
});

describe('statsTiles and rangeLabel', () => {
  it('lists the totals in order', () => {
    expect(statsTiles(stats.totals).map((t) => [t.label, t.value])).toEqual([
      ['Active users', 6],
      ['Sign-ups', 3],
      ['Projects created', 1],
      ['Tasks created', 6],
      ['Tasks completed', 1],
    ]);
  });

  it('describes the range', () => {
    expect(rangeLabel(stats, 'en-GB')).toBe('16 Nov 2026 – 29 Nov 2026');
  });
});
