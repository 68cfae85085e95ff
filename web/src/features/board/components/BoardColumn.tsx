// One board column (a status): heading with the count, its cards (sortable when the person may
// edit), an empty state, and the "Add task to …" button with its inline form. The whole column
// is a drop target, so a card can be dropped on an empty column too.
import { useId } from 'react';
import { useDroppable } from '@dnd-kit/core';
import { SortableContext, verticalListSortingStrategy } from '@dnd-kit/sortable';
import { STATUS_LABELS, type Task, type TaskStatus } from '@/features/tasks/types';
import { AddTaskForm } from './AddTaskForm';
import { SortableTaskCard, StaticTaskCard, taskHref } from './TaskCard';

export const COLUMN_PREFIX = 'column:';
export const columnId = (status: TaskStatus) => `${COLUMN_PREFIX}${status}`;
export const isColumnId = (id: unknown): boolean => typeof id === 'string' && id.startsWith(COLUMN_PREFIX);
export const statusOfColumnId = (id: unknown): TaskStatus | null =>
  isColumnId(id) ? ((id as string).slice(COLUMN_PREFIX.length) as TaskStatus) : null;

type Props = {
  projectId: string;
  status: TaskStatus;
  tasks: Task[];
  names: Record<string, string | undefined>;
  flashing: ReadonlySet<string>;
  canEdit: boolean;
  formOpen: boolean;
  onOpenForm: () => void;
  onCloseForm: () => void;
  onCreate: (title: string, idempotencyKey: string) => Promise<void>;
  /** True while a card is dragged (the empty text invites a drop). */
  dragging: boolean;
};

export function BoardColumn({ projectId, status, tasks, names, flashing, canEdit, formOpen, onOpenForm, onCloseForm, onCreate, dragging }: Props) {
  const headingId = useId();
  const label = STATUS_LABELS[status];
  const { setNodeRef, isOver } = useDroppable({ id: columnId(status), data: { type: 'column', status }, disabled: !canEdit });
  const count = tasks.length;

  return (
    <section
      ref={setNodeRef}
      aria-labelledby={headingId}
      data-status={status}
      data-testid={`column-${status}`}
      className={`flex w-[85vw] max-w-sm shrink-0 snap-start flex-col rounded-xl border bg-zinc-100/70 p-2.5 dark:bg-zinc-50/80 sm:w-80 md:w-auto md:max-w-none md:shrink ${
        isOver && dragging ? 'border-indigo-400 ring-2 ring-indigo-200' : 'border-zinc-200'
      }`}
    >
      <div className="flex items-center justify-between gap-2 px-1 pb-2">
        <h2 id={headingId} className="text-sm font-semibold text-zinc-900">
          {label}
        </h2>
        <span data-testid="column-count" className="rounded-full bg-white px-2 py-0.5 text-xs font-medium text-zinc-700 ring-1 ring-zinc-200">
          <span aria-hidden="true">{count}</span>
          <span className="sr-only">
            {count} {count === 1 ? 'task' : 'tasks'}
          </span>
        </span>
      </div>
      <SortableContext id={status} items={tasks.map((t) => t.id)} strategy={verticalListSortingStrategy}>
        <div className="relative flex min-h-24 flex-1 flex-col">
          <ul aria-label={label} className="flex min-h-24 flex-1 flex-col gap-2">
            {tasks.map((task) =>
              canEdit ? (
                <SortableTaskCard
                  key={task.id}
                  status={status}
                  task={task}
                  href={taskHref(projectId, task.id)}
                  assigneeName={task.assignee_id ? names[task.assignee_id] : undefined}
                  flashing={flashing.has(task.id)}
                />
              ) : (
                <StaticTaskCard
                  key={task.id}
                  task={task}
                  href={taskHref(projectId, task.id)}
                  assigneeName={task.assignee_id ? names[task.assignee_id] : undefined}
                  flashing={flashing.has(task.id)}
                />
              ),
            )}
          </ul>
          {count === 0 && (
            <p className="pointer-events-none absolute inset-0 grid place-items-center rounded-lg border border-dashed border-zinc-300 px-3 py-4 text-center text-xs text-zinc-600">
              {dragging ? 'Drop here' : 'No tasks'}
            </p>
          )}
        </div>
      </SortableContext>
      {canEdit && (
        <div className="mt-2">
          {formOpen ? (
            <AddTaskForm status={status} onCreate={onCreate} onClose={onCloseForm} />
          ) : (
            <button
              type="button"
              onClick={onOpenForm}
              className="flex min-h-10 w-full items-center gap-1.5 rounded-md px-2 text-sm font-medium text-zinc-700 hover:bg-white hover:text-zinc-900"
            >
              <svg aria-hidden="true" viewBox="0 0 16 16" className="size-4 fill-current">
                <path d="M7.25 2.5h1.5v4.75h4.75v1.5H8.75v4.75h-1.5V8.75H2.5v-1.5h4.75V2.5Z" />
              </svg>
              Add task<span className="sr-only"> to {label}</span>
            </button>
          )}
        </div>
      )}
    </section>
  );
}
