// The kanban board: three columns of cards with drag and drop (pointer, touch and keyboard,
// announced in plain words), optimistic moves sent as PATCH {status, after_id, before_id},
// inline task creation, and the loading, empty, truncated and error states.
import { useMemo, useRef, useState, type PointerEvent as ReactPointerEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import {
  closestCenter,
  closestCorners,
  DndContext,
  DragOverlay,
  KeyboardSensor,
  MeasuringStrategy,
  pointerWithin,
  PointerSensor,
  TouchSensor,
  useSensor,
  useSensors,
  type Announcements,
  type CollisionDetection,
  type DragEndEvent,
  type DragOverEvent,
  type DragStartEvent,
  type UniqueIdentifier,
} from '@dnd-kit/core';
import { Alert } from '@/components/ui/Alert';
import { Button } from '@/components/ui/Button';
import { EmptyState } from '@/components/ui/EmptyState';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, errorMessage } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import { STATUS_LABELS, STATUSES, type Task, type TaskStatus } from '@/features/tasks/types';
import { useUserNames } from '@/features/users/api';
import { BOARD_CAP, boardKey, createTask, patchTask, useBoardTasks, type BoardData } from '../api';
import type { OwnChanges } from '../ownChanges';
import {
  appendTask,
  applyMove,
  columnsOf,
  fallbackMoveBody,
  findColumn,
  groupByStatus,
  moveBody,
  moveFromDrag,
  moveInColumns,
  placementOf,
  replaceTask,
  type Columns,
  type Move,
} from '../reorder';
import { boardKeyboardCoordinates } from '../keyboard';
import { BoardColumn, columnId, isColumnId, statusOfColumnId } from './BoardColumn';
import { OverlayCard } from './TaskCard';

/** A mouse or pen drag (touch has its own sensor with a press delay, so swiping still scrolls). */
class MousePointerSensor extends PointerSensor {
  static activators = [
    {
      eventName: 'onPointerDown' as const,
      handler: ({ nativeEvent: e }: ReactPointerEvent) => e.isPrimary && e.button === 0 && e.pointerType !== 'touch',
    },
  ];
}

/**
 * Pointer drags: the card under the pointer, else the nearest card of the column under it, else
 * the column itself (so empty columns take drops). Keyboard drags: the closest corners.
 */
const boardCollision: CollisionDetection = (args) => {
  if (!args.pointerCoordinates) return closestCorners(args);
  const within = pointerWithin(args);
  const card = within.find((c) => !isColumnId(c.id));
  if (card) return [card];
  const column = within.find((c) => isColumnId(c.id));
  if (!column) return [];
  const status = statusOfColumnId(column.id);
  const cards = args.droppableContainers.filter((c) => !isColumnId(c.id) && c.data.current?.status === status);
  if (cards.length === 0) return [column];
  return closestCenter({ ...args, droppableContainers: cards });
};

/** Where a card would land with the pointer/keyboard `over` something, as words. */
function predictedSpot(columns: Columns, activeId: string, overId: UniqueIdentifier | null): { status: TaskStatus; index: number; size: number } | null {
  const from = findColumn(columns, activeId);
  if (!from) return null;
  if (overId === null) return null;
  const overStatus = isColumnId(overId) ? statusOfColumnId(overId) : findColumn(columns, String(overId));
  if (!overStatus) return null;
  const ids = columns[overStatus];
  if (overStatus === from) {
    const index = isColumnId(overId) ? ids.indexOf(activeId) : ids.indexOf(String(overId));
    return { status: overStatus, index, size: ids.length };
  }
  const index = isColumnId(overId) ? ids.length : Math.max(0, ids.indexOf(String(overId)));
  return { status: overStatus, index, size: ids.length + 1 };
}

type Pending = { id: number; move: Move };

export function BoardView({
  projectId,
  memberIds,
  flashing,
  canEdit,
  own,
  enabled,
}: {
  projectId: string;
  memberIds: readonly string[];
  flashing: ReadonlySet<string>;
  canEdit: boolean;
  own: OwnChanges;
  enabled: boolean;
}) {
  const { accessToken, user } = useRequiredSession();
  const queryClient = useQueryClient();
  const query = useBoardTasks(projectId, enabled);
  const [pending, setPending] = useState<Pending[]>([]);
  const nextPending = useRef(1);
  const [moveError, setMoveError] = useState<string | null>(null);
  const [formFor, setFormFor] = useState<TaskStatus | null>(null);

  // Drag state: the columns as they looked when the drag started, and as they look now.
  const [activeId, setActiveId] = useState<string | null>(null);
  const [dragColumns, setDragColumns] = useState<Columns | null>(null);
  const dragRef = useRef<Columns | null>(null);
  const startRef = useRef<Columns | null>(null);
  /** Where the last drop put the card (the drop announcement is made after the state is cleared). */
  const lastDrop = useRef<{ id: string; moved: boolean; spot: { status: TaskStatus; index: number; size: number } } | null>(null);

  // What the server said, with this tab's moves still in flight laid over it: a refetch (e.g.
  // after another person's event) never undoes a move that has not been answered yet.
  const tasks = useMemo(() => pending.reduce((list, p) => applyMove(list, p.move), query.data?.items ?? []), [query.data, pending]);
  const byId = useMemo(() => new Map(tasks.map((t) => [t.id, t])), [tasks]);
  const groups = useMemo(() => groupByStatus(tasks), [tasks]);
  const names = useUserNames([...memberIds, ...tasks.flatMap((t) => (t.assignee_id ? [t.assignee_id] : []))]);
  const columns = dragColumns ?? columnsOf(tasks);

  const [keyboardCoordinates] = useState(() => boardKeyboardCoordinates(() => dragRef.current, isColumnId, columnId));
  const sensors = useSensors(
    useSensor(MousePointerSensor, { activationConstraint: { distance: 5 } }),
    useSensor(TouchSensor, { activationConstraint: { delay: 250, tolerance: 8 } }),
    useSensor(KeyboardSensor, {
      coordinateGetter: keyboardCoordinates,
      keyboardCodes: { start: ['Space'], cancel: ['Escape'], end: ['Space', 'Enter'] },
    }),
  );

  function setDrag(c: Columns | null) {
    dragRef.current = c;
    setDragColumns(c);
  }

  const title = (id: UniqueIdentifier) => `“${byId.get(String(id))?.title ?? 'task'}”`;
  const spotWords = (s: { status: TaskStatus; index: number; size: number }) =>
    `${STATUS_LABELS[s.status]}, position ${s.index + 1} of ${s.size}`;

  const announcements: Announcements = {
    onDragStart({ active }) {
      const s = predictedSpot(dragRef.current ?? columnsOf(tasks), String(active.id), active.id);
      return `Picked up task ${title(active.id)}${s ? ` in ${spotWords(s)}` : ''}. Use the arrow keys to move it, Space to drop it, Escape to cancel.`;
    },
    onDragOver({ active, over }) {
      if (over?.id === active.id && startRef.current && dragRef.current === startRef.current) return undefined;
      if (!over) return `Task ${title(active.id)} is not over a column.`;
      const s = dragRef.current && predictedSpot(dragRef.current, String(active.id), over.id);
      return s ? `Task ${title(active.id)} is over ${spotWords(s)}.` : undefined;
    },
    onDragEnd({ active, over }) {
      if (!over) return `Task ${title(active.id)} was dropped outside the columns and did not move.`;
      const drop = lastDrop.current;
      if (!drop || drop.id !== String(active.id)) return `Task ${title(active.id)} dropped.`;
      if (!drop.moved) return `Task ${title(active.id)} dropped where it was, in ${spotWords(drop.spot)}.`;
      return `Task ${title(active.id)} dropped in ${spotWords(drop.spot)}.`;
    },
    onDragCancel({ active }) {
      const s = startRef.current && predictedSpot(startRef.current, String(active.id), active.id);
      return `Moving cancelled. Task ${title(active.id)} stays in ${s ? spotWords(s) : 'its place'}.`;
    },
  };

  function onDragStart({ active }: DragStartEvent) {
    const c = columnsOf(tasks);
    startRef.current = c;
    setDrag(c);
    setActiveId(String(active.id));
    setMoveError(null);
  }

  function onDragOver({ active, over }: DragOverEvent) {
    const cur = dragRef.current;
    if (!over || !cur) return;
    const id = String(active.id);
    const from = findColumn(cur, id);
    const to = isColumnId(over.id) ? statusOfColumnId(over.id) : findColumn(cur, String(over.id));
    if (!from || !to || from === to) return;
    // Into another column: above or below the card it is over, or at the end of the column.
    let index = cur[to].length;
    if (!isColumnId(over.id)) {
      const overIndex = cur[to].indexOf(String(over.id));
      const dragged = active.rect.current.translated;
      const below = dragged ? dragged.top + dragged.height / 2 > over.rect.top + over.rect.height / 2 : false;
      index = overIndex + (below ? 1 : 0);
    }
    setDrag(moveInColumns(cur, id, to, index));
  }

  function onDragEnd({ active, over }: DragEndEvent) {
    const id = String(active.id);
    let end = dragRef.current;
    const start = startRef.current;
    if (end && over && !isColumnId(over.id)) {
      // Within one column the sortable list only showed the new order; make it real.
      const to = findColumn(end, String(over.id));
      if (to && to === findColumn(end, id)) end = moveInColumns(end, id, to, end[to].indexOf(String(over.id)));
    }
    setDrag(null);
    setActiveId(null);
    if (!over || !end || !start) return;
    const move = moveFromDrag(start, end, id);
    const status = findColumn(end, id);
    lastDrop.current = status ? { id, moved: move !== null, spot: { status, index: end[status].indexOf(id), size: end[status].length } } : null;
    if (move) void sendMove(move);
  }

  function onDragCancel() {
    setDrag(null);
    setActiveId(null);
  }

  async function sendMove(move: Move) {
    const task = byId.get(move.taskId);
    const original = placementOf(columnsOf(tasks), move.taskId);
    const pid = nextPending.current++;
    setPending((p) => [...p, { id: pid, move }]);
    own.begin(move.taskId);
    const key = boardKey(projectId);
    await queryClient.cancelQueries({ queryKey: key });
    queryClient.setQueryData<BoardData>(key, (d) => (d ? { ...d, items: applyMove(d.items, move) } : d));
    try {
      let saved: Task;
      try {
        saved = await patchTask(accessToken, move.taskId, moveBody(move));
      } catch (e) {
        // Someone put a card between the two neighbours meanwhile: keep just the card above.
        const fallback = fallbackMoveBody(move);
        const neighbourProblem = e instanceof ApiError && e.status === 422 && e.fieldErrors.some((f) => f.field === 'before_id' || f.field === 'after_id');
        if (!fallback || !neighbourProblem) throw e;
        saved = await patchTask(accessToken, move.taskId, fallback);
      }
      own.end(move.taskId, saved);
      queryClient.setQueryData<BoardData>(key, (d) => (d ? { ...d, items: replaceTask(applyMove(d.items, move), saved) } : d));
      // The board holds the answer; other task views (the details' cache holds the task with its
      // ETag) refetch when next shown, and the live echo refreshes whatever is on screen.
      void queryClient.invalidateQueries({ queryKey: keys.tasks(projectId), refetchType: 'none' });
      void queryClient.invalidateQueries({ queryKey: keys.task(move.taskId), refetchType: 'none' });
    } catch (e) {
      own.end(move.taskId, null);
      if (original) queryClient.setQueryData<BoardData>(key, (d) => (d ? { ...d, items: applyMove(d.items, original) } : d));
      setMoveError(`Could not move “${task?.title ?? 'the task'}”: ${errorMessage(e)}`);
      // Changed meanwhile (409, 412), a neighbour gone (422), the task gone (404): load afresh.
      if (e instanceof ApiError && [404, 409, 412, 422].includes(e.status)) void queryClient.invalidateQueries({ queryKey: keys.tasks(projectId) });
    } finally {
      setPending((p) => p.filter((x) => x.id !== pid));
    }
  }

  async function create(status: TaskStatus, title: string, idempotencyKey: string) {
    const token = own.beginCreate(user.id);
    let created: Task | null = null;
    try {
      created = await createTask(accessToken, projectId, { title, status }, idempotencyKey);
      const task = created;
      queryClient.setQueryData<BoardData>(boardKey(projectId), (d) => (d ? { ...d, items: appendTask(d.items, task) } : d));
      void queryClient.invalidateQueries({ queryKey: keys.tasks(projectId), refetchType: 'none' });
    } finally {
      own.endCreate(token, created);
    }
  }

  if (query.isPending) return <BoardSkeleton />;
  if (query.isError) {
    return (
      <div className="space-y-3">
        <ErrorSummary error={query.error} />
        <Button variant="secondary" onClick={() => void query.refetch()}>
          Try again
        </Button>
      </div>
    );
  }

  const activeTask = activeId ? byId.get(activeId) : undefined;
  const empty = tasks.length === 0;

  return (
    <div className="space-y-4">
      {moveError && (
        <div role="alert" className="flex items-start justify-between gap-3 rounded-md border border-red-200 bg-red-50 px-3 py-2.5 text-sm text-red-800">
          <p>{moveError}</p>
          <button type="button" onClick={() => setMoveError(null)} className="shrink-0 rounded px-1 font-medium underline">
            Dismiss
          </button>
        </div>
      )}
      {query.data.truncated && (
        <Alert tone="info" title={`Showing the first ${BOARD_CAP} tasks`}>
          This project has more tasks than the board shows. Use the list view to search and page through all of them.
        </Alert>
      )}
      {empty && formFor === null && (
        <EmptyState
          title="No tasks yet"
          action={
            canEdit ? (
              <Button onClick={() => setFormFor('todo')}>Add task</Button>
            ) : undefined
          }
        >
          {canEdit
            ? 'Tasks move from To do through In progress to Done. Add the first one, then drag cards between columns.'
            : 'Nothing has been planned here yet. Owners and editors of the project add tasks.'}
        </EmptyState>
      )}
      <DndContext
        sensors={sensors}
        collisionDetection={boardCollision}
        measuring={{ droppable: { strategy: MeasuringStrategy.Always } }}
        accessibility={{
          announcements,
          screenReaderInstructions: {
            draggable:
              'To move this task, press Space to pick it up. Use the arrow keys to move it up and down or to another column, press Space again to drop it, or Escape to cancel. Press Enter to open it.',
          },
        }}
        onDragStart={onDragStart}
        onDragOver={onDragOver}
        onDragEnd={onDragEnd}
        onDragCancel={onDragCancel}
      >
        <div
          data-testid="board"
          className="-mx-3 flex snap-x snap-mandatory gap-3 overflow-x-auto px-3 pb-3 sm:-mx-6 sm:px-6 md:mx-0 md:grid md:grid-cols-3 md:gap-4 md:overflow-visible md:px-0"
        >
          {STATUSES.map((status) => (
            <BoardColumn
              key={status}
              projectId={projectId}
              status={status}
              tasks={dragColumns ? columns[status].map((id) => byId.get(id)).filter((t): t is Task => Boolean(t)) : groups[status]}
              names={names}
              flashing={flashing}
              canEdit={canEdit}
              formOpen={formFor === status}
              onOpenForm={() => setFormFor(status)}
              onCloseForm={() => setFormFor(null)}
              onCreate={(title, key) => create(status, title, key)}
              dragging={activeId !== null}
            />
          ))}
        </div>
        <DragOverlay dropAnimation={{ duration: 180, easing: 'ease-out' }}>
          {activeTask ? <OverlayCard task={activeTask} assigneeName={activeTask.assignee_id ? names[activeTask.assignee_id] : undefined} /> : null}
        </DragOverlay>
      </DndContext>
    </div>
  );
}

export function BoardSkeleton() {
  return (
    <div role="status" aria-label="Loading tasks" className="grid grid-cols-1 gap-4 md:grid-cols-3">
      {STATUSES.map((s, i) => (
        <div key={s} className={`rounded-xl border border-zinc-200 bg-zinc-100/70 p-2.5 dark:bg-zinc-50/80 ${i > 0 ? 'hidden md:block' : ''}`}>
          <div className="mb-3 h-4 w-24 animate-pulse rounded bg-zinc-200" />
          {[0, 1, 2].slice(0, 3 - i).map((n) => (
            <div key={n} className="mb-2 h-20 animate-pulse rounded-lg bg-white ring-1 ring-zinc-200" />
          ))}
        </div>
      ))}
      <span className="sr-only">Loading tasks…</span>
    </div>
  );
}
