// Pure board ordering: tasks grouped into columns, a move applied to a task list (optimistic
// update), and the move a drag produced (which neighbours to send to PATCH /api/tasks/{id}).
import { STATUSES, type Task, type TaskStatus } from '@/features/tasks/types';

/** A placement: put `taskId` into `status`, after `afterId` (card above) / before `beforeId` (card below). */
export type Move = { taskId: string; status: TaskStatus; afterId: string | null; beforeId: string | null };

/** Task ids per column, top to bottom. */
export type Columns = Record<TaskStatus, string[]>;

export function emptyColumns(): Columns {
  return { todo: [], in_progress: [], done: [] };
}

/** Groups tasks per status, keeping their order (the server's `sort=position` order). */
export function groupByStatus(tasks: readonly Task[]): Record<TaskStatus, Task[]> {
  const out: Record<TaskStatus, Task[]> = { todo: [], in_progress: [], done: [] };
  for (const t of tasks) (out[t.status] ?? out.todo).push(t);
  return out;
}

export function columnsOf(tasks: readonly Task[]): Columns {
  const groups = groupByStatus(tasks);
  return { todo: groups.todo.map((t) => t.id), in_progress: groups.in_progress.map((t) => t.id), done: groups.done.map((t) => t.id) };
}

/** The column holding `id`, or null. */
export function findColumn(columns: Columns, id: string): TaskStatus | null {
  for (const s of STATUSES) if (columns[s].includes(id)) return s;
  return null;
}

/**
 * Moves `taskId` to index `toIndex` of column `to` (clamped), removing it from wherever it was.
 * Returns the same object when nothing changes.
 */
export function moveInColumns(columns: Columns, taskId: string, to: TaskStatus, toIndex: number): Columns {
  const from = findColumn(columns, taskId);
  if (from === null) return columns;
  const without = columns[from].filter((id) => id !== taskId);
  const target = from === to ? without : [...columns[to]];
  const index = Math.max(0, Math.min(toIndex, target.length));
  if (from === to && columns[from].indexOf(taskId) === index) return columns;
  target.splice(index, 0, taskId);
  return { ...columns, [from]: without, [to]: target };
}

/** Where a task sits: its column and the cards right above and below it. */
export function placementOf(columns: Columns, taskId: string): Move | null {
  const status = findColumn(columns, taskId);
  if (status === null) return null;
  const ids = columns[status];
  const i = ids.indexOf(taskId);
  return { taskId, status, afterId: ids[i - 1] ?? null, beforeId: ids[i + 1] ?? null };
}

/** The move a drag made (from the columns when it started to the columns at the drop), or null if none. */
export function moveFromDrag(start: Columns, end: Columns, taskId: string): Move | null {
  const before = placementOf(start, taskId);
  const after = placementOf(end, taskId);
  if (!before || !after) return null;
  if (before.status === after.status && start[before.status].indexOf(taskId) === end[after.status].indexOf(taskId)) return null;
  return after;
}

/**
 * Applies a move to a task list (the optimistic update). The task lands right after `afterId`
 * when that task is in the target column, else right before `beforeId`, else at the end of the
 * column. Applying the same move twice gives the same list.
 */
export function applyMove(tasks: readonly Task[], move: Move): Task[] {
  const task = tasks.find((t) => t.id === move.taskId);
  if (!task) return [...tasks];
  const moved: Task = task.status === move.status ? task : { ...task, status: move.status };
  const rest = tasks.filter((t) => t.id !== move.taskId);
  const inColumn = (id: string | null) => (id ? rest.findIndex((t) => t.id === id && t.status === move.status) : -1);
  let index = inColumn(move.afterId);
  if (index >= 0) index += 1;
  else index = inColumn(move.beforeId);
  if (index < 0) {
    // End of the column: after its last card, or at the very end when it is empty.
    let last = -1;
    rest.forEach((t, i) => {
      if (t.status === move.status) last = i;
    });
    index = last >= 0 ? last + 1 : rest.length;
  }
  rest.splice(index, 0, moved);
  return rest;
}

/** Puts a server answer in place of the task with the same id (keeping its place in the list). */
export function replaceTask(tasks: readonly Task[], task: Task): Task[] {
  return tasks.map((t) => (t.id === task.id ? task : t));
}

/** Adds a task at the end of its column unless the list already holds it. */
export function appendTask(tasks: readonly Task[], task: Task): Task[] {
  if (tasks.some((t) => t.id === task.id)) return replaceTask(tasks, task);
  return applyMove([...tasks, task], { taskId: task.id, status: task.status, afterId: null, beforeId: null });
}

/** The PATCH body for a move: the new status and both neighbours (the server ranks between them). */
export function moveBody(move: Move): { status: TaskStatus; after_id?: string; before_id?: string } {
  const body: { status: TaskStatus; after_id?: string; before_id?: string } = { status: move.status };
  if (move.afterId) body.after_id = move.afterId;
  if (move.beforeId) body.before_id = move.beforeId;
  return body;
}

/**
 * A looser body for a second try when the server refused the pair of neighbours (someone put a
 * card between them meanwhile): only the card above, or only the card below at the top.
 */
export function fallbackMoveBody(move: Move): { status: TaskStatus; after_id?: string; before_id?: string } | null {
  if (move.afterId && move.beforeId) return { status: move.status, after_id: move.afterId };
  return null;
}
