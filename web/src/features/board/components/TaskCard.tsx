// A board card: title (the link that opens the task), priority, assignee, due date, labels.
// `SortableTaskCard` makes the whole card draggable with a pointer and the title link the
// keyboard handle (Space picks it up, Enter still opens it).
import type { HTMLAttributes, KeyboardEventHandler, MouseEvent, Ref } from 'react';
import { useSortable } from '@dnd-kit/sortable';
import { CSS } from '@dnd-kit/utilities';
import { navigate } from '@/app/router';
import type { Task, TaskStatus } from '@/features/tasks/types';
import { Assignee, DueDate, Labels, PriorityBadge } from './TaskBits';

type CardProps = {
  task: Task;
  href: string;
  assigneeName: string | undefined;
  flashing: boolean;
};

export function taskHref(projectId: string, taskId: string): string {
  return `/projects/${encodeURIComponent(projectId)}/tasks/${encodeURIComponent(taskId)}`;
}

/** A plain left click navigates in the app; modified clicks keep the browser's behaviour. */
export function followLink(e: MouseEvent<HTMLAnchorElement>, href: string): void {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(href);
}

const CARD =
  'group relative rounded-lg border border-zinc-200 bg-white p-3 shadow-sm transition-shadow hover:border-zinc-300 hover:shadow';

/** What a card shows, for the list and for the drag overlay (`linkProps` absent: no link). */
function CardContent({
  task,
  href,
  assigneeName,
  linkRef,
  linkKeyDown,
  describedBy,
}: Omit<CardProps, 'flashing'> & { linkRef?: Ref<HTMLAnchorElement>; linkKeyDown?: KeyboardEventHandler; describedBy?: string }) {
  return (
    <>
      <div className="flex items-start justify-between gap-2">
        {href ? (
          <a
            href={href}
            ref={linkRef}
            onClick={(e) => followLink(e, href)}
            onKeyDown={linkKeyDown}
            aria-describedby={describedBy}
            draggable={false}
            className="min-w-0 break-words text-sm font-medium text-zinc-900 after:absolute after:inset-0 after:rounded-lg focus-visible:outline-none focus-visible:after:outline-2 focus-visible:after:outline-offset-2 focus-visible:after:outline-indigo-600"
          >
            {task.title}
          </a>
        ) : (
          <span className="min-w-0 break-words text-sm font-medium text-zinc-900">{task.title}</span>
        )}
        <span className="shrink-0">
          <PriorityBadge priority={task.priority} />
        </span>
      </div>
      {(task.assignee_id || task.due_date) && (
        <div className="mt-2 flex flex-wrap items-center justify-between gap-x-3 gap-y-1 text-xs text-zinc-700">
          {task.assignee_id ? <Assignee id={task.assignee_id} name={assigneeName} /> : <span />}
          <DueDate due={task.due_date} status={task.status} />
        </div>
      )}
      {task.labels.length > 0 && (
        <div className="mt-2">
          <Labels labels={task.labels} />
        </div>
      )}
    </>
  );
}

/** A card that cannot be dragged (viewers, guests). */
export function StaticTaskCard({ task, href, assigneeName, flashing }: CardProps) {
  return (
    <li
      data-task-id={task.id}
      data-live-updated={flashing ? 'true' : undefined}
      className={`${CARD} ${flashing ? 'live-flash' : ''}`}
    >
      <CardContent task={task} href={href} assigneeName={assigneeName} />
    </li>
  );
}

/** The copy of a card that follows the pointer while dragging. */
export function OverlayCard({ task, assigneeName }: { task: Task; assigneeName: string | undefined }) {
  return (
    <div className={`${CARD} cursor-grabbing shadow-lg ring-2 ring-indigo-500`}>
      <CardContent task={task} href="" assigneeName={assigneeName} />
    </div>
  );
}

export function SortableTaskCard({ task, href, assigneeName, flashing, status }: CardProps & { status: TaskStatus }) {
  const { setNodeRef, setActivatorNodeRef, listeners, attributes, transform, transition, isDragging } = useSortable({
    id: task.id,
    data: { type: 'card', status },
  });
  // The pointer and touch sensors listen on the whole card, the keyboard one on its title link.
  const on = (name: string) => listeners?.[name] as ((e: unknown) => void) | undefined;
  const pointer: HTMLAttributes<HTMLLIElement> = { onPointerDown: on('onPointerDown'), onTouchStart: on('onTouchStart') };
  return (
    <li
      ref={setNodeRef}
      style={{ transform: CSS.Translate.toString(transform), transition }}
      data-task-id={task.id}
      data-live-updated={flashing ? 'true' : undefined}
      data-dragging={isDragging || undefined}
      {...pointer}
      className={`${CARD} cursor-grab touch-manipulation select-none ${flashing ? 'live-flash' : ''} ${
        isDragging ? 'border-dashed border-indigo-300 bg-indigo-50 opacity-60 shadow-none' : ''
      }`}
    >
      <CardContent
        task={task}
        href={href}
        assigneeName={assigneeName}
        linkRef={setActivatorNodeRef}
        linkKeyDown={on('onKeyDown')}
        describedBy={attributes['aria-describedby']}
      />
    </li>
  );
}
