// Shapes GET /api/admin/stats for the charts and tiles: period labels, series, totals.
import type { AdminStats, StatsCounts, StatsPeriod } from '../types';

export type StatsSeries = {
  /** Short labels for the axis ("3 Nov"), one per bucket. */
  labels: string[];
  /** Long labels for tables and summaries ("Week of 3 Nov 2026"). */
  longLabels: string[];
  signups: number[];
  activeUsers: number[];
};

export type Tile = { key: keyof StatsCounts; label: string; value: number };

const TILE_LABELS: [keyof StatsCounts, string][] = [
  ['active_users', 'Active users'],
  ['signups', 'Sign-ups'],
  ['projects_created', 'Projects created'],
  ['tasks_created', 'Tasks created'],
  ['tasks_completed', 'Tasks completed'],
];

/** A `YYYY-MM-DD` (UTC) date as a Date at UTC midnight, or null. */
function utcDate(day: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return null;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
}

export function periodLabels(start: string, period: StatsPeriod, locale?: string): { short: string; long: string } {
  const date = utcDate(start);
  if (!date) return { short: start, long: start };
  const short = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short', timeZone: 'UTC' }).format(date);
  const long = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' }).format(date);
  return period === 'week' ? { short, long: `Week of ${long}` } : { short, long };
}

export function shapeStats(stats: AdminStats, locale?: string): StatsSeries {
  const labels: string[] = [];
  const longLabels: string[] = [];
  for (const bucket of stats.buckets) {
    const { short, long } = periodLabels(bucket.start, stats.period, locale);
    labels.push(short);
    longLabels.push(long);
  }
  return {
    labels,
    longLabels,
    signups: stats.buckets.map((b) => b.signups),
    activeUsers: stats.buckets.map((b) => b.active_users),
  };
}

/** The summary tiles, in display order. */
export function statsTiles(totals: StatsCounts): Tile[] {
  return TILE_LABELS.map(([key, label]) => ({ key, label, value: totals[key] ?? 0 }));
}

/** "1 Nov – 30 Nov 2026" for the range the answer covers. */
export function rangeLabel(stats: Pick<AdminStats, 'from' | 'to'>, locale?: string): string {
  const from = utcDate(stats.from);
  const to = utcDate(stats.to);
  if (!from || !to) return `${stats.from} – ${stats.to}`;
  const f = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
  return `${f.format(from)} – ${f.format(to)}`;
}
