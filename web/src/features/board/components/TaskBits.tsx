// Small pieces shared by cards and rows: priority badge, assignee, due date, labels.
import { PRIORITY_LABELS, type TaskPriority, type TaskStatus } from '@/features/tasks/types';
import { dueLabel, initials, isOverdue } from '../format';

const PRIORITY_TONES: Record<TaskPriority, string> = {
  low: 'bg-zinc-100 text-zinc-700 ring-zinc-200 dark:bg-zinc-200 dark:ring-zinc-300',
  medium: 'bg-sky-50 text-sky-800 ring-sky-100',
  high: 'bg-amber-50 text-amber-800 ring-amber-200',
  urgent: 'bg-red-50 text-red-800 ring-red-200',
};

export function PriorityBadge({ priority }: { priority: TaskPriority }) {
  return (
    <span
      data-testid="priority"
      className={`inline-flex items-center rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset ${PRIORITY_TONES[priority] ?? PRIORITY_TONES.medium}`}
    >
      <span className="sr-only">Priority: </span>
      {PRIORITY_LABELS[priority] ?? priority}
    </span>
  );
}

/** The assignee as initials in a circle, and the name unless `compact`. */
export function Assignee({ id, name, compact = false }: { id: string | null; name: string | undefined; compact?: boolean }) {
  if (!id) return compact ? null : <span className="text-zinc-500">Unassigned</span>;
  const shown = name ?? 'Loading…';
  return (
    <span className="inline-flex min-w-0 items-center gap-1.5" title={name}>
      <span aria-hidden="true" className="grid size-6 shrink-0 place-items-center rounded-full bg-indigo-100 text-[0.65rem] font-semibold text-indigo-800">
        {name ? initials(name) : '…'}
      </span>
      <span className={compact ? 'sr-only' : 'truncate'}>
        {compact && 'Assigned to '}
        {shown}
      </span>
    </span>
  );
}

export function DueDate({ due, status, now }: { due: string | null; status: TaskStatus; now?: Date }) {
  if (!due) return null;
  const overdue = isOverdue(due, status, now);
  return (
    <time
      dateTime={due}
      data-overdue={overdue || undefined}
      className={`inline-flex items-center gap-1 text-xs ${overdue ? 'font-medium text-red-700' : 'text-zinc-600'}`}
    >
      <svg aria-hidden="true" viewBox="0 0 16 16" className="size-3.5 fill-current">
        <path d="M5 1h1.5v1.5h3V1H11v1.5h2A1.5 1.5 0 0 1 14.5 4v9A1.5 1.5 0 0 1 13 14.5H3A1.5 1.5 0 0 1 1.5 13V4A1.5 1.5 0 0 1 3 2.5h2V1ZM3 6v7h10V6H3Z" />
      </svg>
      {dueLabel(due, status, now)}
    </time>
  );
}

export function Labels({ labels, max = 4 }: { labels: readonly string[]; max?: number }) {
  if (labels.length === 0) return null;
  const shown = labels.slice(0, max);
  return (
    <ul aria-label="Labels" className="flex flex-wrap gap-1">
      {shown.map((l) => (
        <li key={l} className="max-w-40 truncate rounded bg-zinc-100 px-1.5 py-0.5 text-xs text-zinc-700 dark:bg-zinc-200 dark:text-zinc-800">
          {l}
        </li>
      ))}
      {labels.length > max && <li className="px-1 py-0.5 text-xs text-zinc-600">+{labels.length - max} more</li>}
    </ul>
  );
}
