// Display helpers for cards and rows: due dates (calendar dates, overdue), initials, times.
import type { TaskStatus } from '@/features/tasks/types';

/** Today's calendar date in the browser's time zone, as `YYYY-MM-DD`. */
export function todayString(now: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}`;
}

/** A `YYYY-MM-DD` date as a local Date at noon (no time-zone slip), or null when malformed. */
export function parseDay(day: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return null;
  const date = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 12);
  return date.getMonth() === Number(m[2]) - 1 ? date : null;
}

/** A task is overdue when its due date is before today and it is not done. */
export function isOverdue(due: string | null, status: TaskStatus, now: Date = new Date()): boolean {
  if (!due || status === 'done' || !parseDay(due)) return false;
  return due < todayString(now);
}

/** Whole days from today to `due` (negative when past), or null. */
export function daysUntil(due: string, now: Date = new Date()): number | null {
  const d = parseDay(due);
  const t = parseDay(todayString(now));
  if (!d || !t) return null;
  return Math.round((d.getTime() - t.getTime()) / 86_400_000);
}

/** "Nov 20" this year, "Nov 20, 2027" otherwise; the raw text if it is not a date. */
export function formatDay(due: string, now: Date = new Date(), locale?: string): string {
  const d = parseDay(due);
  if (!d) return due;
  const sameYear = d.getFullYear() === now.getFullYear();
  return new Intl.DateTimeFormat(locale, sameYear ? { month: 'short', day: 'numeric' } : { month: 'short', day: 'numeric', year: 'numeric' }).format(d);
}

/** The words for a due date: "Due today", "Due tomorrow", "Due Nov 20", "Overdue · Nov 2". */
export function dueLabel(due: string, status: TaskStatus, now: Date = new Date(), locale?: string): string {
  const days = daysUntil(due, now);
  if (days === null) return `Due ${due}`;
  if (isOverdue(due, status, now)) return `Overdue · ${formatDay(due, now, locale)}`;
  if (days === 0) return 'Due today';
  if (days === 1) return 'Due tomorrow';
  return `Due ${formatDay(due, now, locale)}`;
}

/** Up to two initials of a name ("Ada Lovelace" → "AL"); "?" for nothing. */
export function initials(name: string | null | undefined): string {
  const words = (name ?? '').trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return '?';
  const first = Array.from(words[0] ?? '')[0] ?? '';
  const last = words.length > 1 ? (Array.from(words[words.length - 1] ?? '')[0] ?? '') : '';
  return (first + last).toUpperCase();
}

/** A short date and time for "Updated" columns ("Nov 20, 14:05"). */
export function formatDateTime(iso: string, now: Date = new Date(), locale?: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const sameYear = d.getFullYear() === now.getFullYear();
  return new Intl.DateTimeFormat(locale, {
    month: 'short',
    day: 'numeric',
    ...(sameYear ? {} : { year: 'numeric' }),
    hour: '2-digit',
    minute: '2-digit',
  }).format(d);
}
