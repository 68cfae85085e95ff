// Tests for board ordering: columns, drag results, optimistic moves and PATCH bodies.
import { describe, expect, it } from 'vitest';
import type { Task, TaskStatus } from '@/features/tasks/types';
import {
  appendTask,
  applyMove,
  columnsOf,
  fallbackMoveBody,
  findColumn,
  moveBody,
  moveFromDrag,
  moveInColumns,
  placementOf,
  type Columns,
} from './reorder';

function task(id: string, status: TaskStatus = 'todo'): Task {
  return {
    id,
    project_id: 'p',
    title: id.toUpperCase(),
    description: '',
    status,
    priority: 'medium',
    assignee_id: null,
    due_date: null,
    labels: [],
    position: 'i',
    created_by: 'u',
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
  };
}

const ids = (tasks: Task[]) => tasks.map((t) => `${t.id}:${t.status}`).join(' ');
const cols = (c: Partial<Columns>): Columns => ({ todo: [], in_progress: [], done: [], ...c });

describe('columnsOf / findColumn', () => {
  it('groups ids by status keeping order', () => {
    const c = columnsOf([task('a'), task('b', 'done'), task('c'), task('d', 'in_progress')]);
    expect(c).toEqual({ todo: ['a', 'c'], in_progress: ['d'], done: ['b'] });
    expect(findColumn(c, 'd')).toBe('in_progress');
    expect(findColumn(c, 'x')).toBeNull();
  });
});

describe('moveInColumns', () => {
  const start = cols({ todo: ['a', 'b', 'c'], done: ['x'] });
  it('reorders within a column', () => {
    expect(moveInColumns(start, 'a', 'todo', 2).todo).toEqual(['b', 'c', 'a']);
  });
  it('moves to another column at an index (clamped)', () => {
    const c = moveInColumns(start, 'b', 'done', 99);
    expect(c.todo).toEqual(['a', 'c']);
    expect(c.done).toEqual(['x', 'b']);
  });
  it('moves into an empty column', () => {
    expect(moveInColumns(start, 'a', 'in_progress', 0).in_progress).toEqual(['a']);
  });
  it('returns the same object when nothing changes', () => {
    expect(moveInColumns(start, 'b', 'todo', 1)).toBe(start);
    expect(moveInColumns(start, 'zz', 'todo', 0)).toBe(start);
  });
});

describe('placementOf / moveFromDrag (which neighbours)', () => {
  it('names the card above as afterId and the card below as beforeId', () => {
    expect(placementOf(cols({ todo: ['a', 'b', 'c'] }), 'b')).toEqual({ taskId: 'b', status: 'todo', afterId: 'a', beforeId: 'c' });
  });
  it('top of a column: only beforeId', () => {
    expect(placementOf(cols({ done: ['b', 'c'] }), 'b')).toEqual({ taskId: 'b', status: 'done', afterId: null, beforeId: 'c' });
  });
  it('bottom of a column: only afterId', () => {
    expect(placementOf(cols({ done: ['c', 'b'] }), 'b')).toEqual({ taskId: 'b', status: 'done', afterId: 'c', beforeId: null });
  });
  it('empty target column: no neighbours', () => {
    const start = cols({ todo: ['a', 'b'] });
    const end = moveInColumns(start, 'a', 'done', 0);
    expect(moveFromDrag(start, end, 'a')).toEqual({ taskId: 'a', status: 'done', afterId: null, beforeId: null });
  });
  it('a drop where it started is no move', () => {
    const start = cols({ todo: ['a', 'b'] });
    expect(moveFromDrag(start, start, 'a')).toBeNull();
    // Dragged away and back again.
    const away = moveInColumns(start, 'a', 'done', 0);
    expect(moveFromDrag(start, moveInColumns(away, 'a', 'todo', 0), 'a')).toBeNull();
  });
  it('moving down within a column', () => {
    const start = cols({ todo: ['a', 'b', 'c', 'd'] });
    expect(moveFromDrag(start, moveInColumns(start, 'a', 'todo', 2), 'a')).toEqual({
      taskId: 'a',
      status: 'todo',
      afterId: 'c',
      beforeId: 'd',
    });
  });
  it('moving up within a column', () => {
    const start = cols({ todo: ['a', 'b', 'c', 'd'] });
    expect(moveFromDrag(start, moveInColumns(start, 'd', 'todo', 0), 'd')).toEqual({
      taskId: 'd',
      status: 'todo',
      afterId: null,
      beforeId: 'a',
    });
  });
  it('unknown task: null', () => {
    expect(moveFromDrag(cols({}), cols({}), 'a')).toBeNull();
  });
});

describe('applyMove (optimistic reorder)', () => {
  const list = [task('a'), task('b'), task('x', 'done'), task('c'), task('y', 'done')];
  it('places after the card above', () => {
    expect(ids(applyMove(list, { taskId: 'a', status: 'done', afterId: 'x', beforeId: 'y' }))).toBe('b:todo x:done a:done c:todo y:done');
  });
  it('places before the card below when there is no card above', () => {
    expect(ids(applyMove(list, { taskId: 'c', status: 'todo', afterId: null, beforeId: 'a' }))).toBe('c:todo a:todo b:todo x:done y:done');
  });
  it('falls back to the card below when the card above is not in the column', () => {
    expect(ids(applyMove(list, { taskId: 'c', status: 'done', afterId: 'a', beforeId: 'y' }))).toBe('a:todo b:todo x:done c:done y:done');
  });
  it('goes to the end of the column without neighbours', () => {
    expect(ids(applyMove(list, { taskId: 'a', status: 'done', afterId: null, beforeId: null }))).toBe('b:todo x:done c:todo y:done a:done');
    expect(ids(applyMove(list, { taskId: 'a', status: 'in_progress', afterId: null, beforeId: null }))).toBe(
      'b:todo x:done c:todo y:done a:in_progress',
    );
  });
  it('is idempotent (an echo or a refetch re-applying it changes nothing)', () => {
    const move = { taskId: 'a', status: 'done' as const, afterId: 'x', beforeId: 'y' };
    const once = applyMove(list, move);
    expect(ids(applyMove(once, move))).toBe(ids(once));
  });
  it('leaves the input alone and ignores unknown tasks', () => {
    const copy = ids(list);
    applyMove(list, { taskId: 'a', status: 'done', afterId: null, beforeId: null });
    expect(ids(list)).toBe(copy);
    expect(ids(applyMove(list, { taskId: 'zz', status: 'done', afterId: null, beforeId: null }))).toBe(copy);
  });
  it('rolls back with the original placement', () => {
    const original = placementOf(columnsOf(list), 'b');
    const moved = applyMove(list, { taskId: 'b', status: 'done', afterId: null, beforeId: 'x' });
    expect(ids(applyMove(moved, original!))).toBe(ids(list));
  });
});

describe('appendTask', () => {
  it('adds at the end of the column once', () => {
    const list = [task('a'), task('x', 'done')];
    const added = appendTask(list, task('n'));
    expect(ids(added)).toBe('a:todo n:todo x:done');
    expect(ids(appendTask(added, task('n')))).toBe('a:todo n:todo x:done');
  });
});

describe('moveBody / fallbackMoveBody', () => {
  it('sends the status and the neighbours that exist', () => {
    expect(moveBody({ taskId: 't', status: 'done', afterId: 'a', beforeId: 'b' })).toEqual({ status: 'done', after_id: 'a', before_id: 'b' });
    expect(moveBody({ taskId: 't', status: 'todo', afterId: null, beforeId: 'b' })).toEqual({ status: 'todo', before_id: 'b' });
    expect(moveBody({ taskId: 't', status: 'todo', afterId: null, beforeId: null })).toEqual({ status: 'todo' });
  });
  it('falls back to the card above only when both were sent', () => {
    expect(fallbackMoveBody({ taskId: 't', status: 'done', afterId: 'a', beforeId: 'b' })).toEqual({ status: 'done', after_id: 'a' });
    expect(fallbackMoveBody({ taskId: 't', status: 'done', afterId: 'a', beforeId: null })).toBeNull();
  });
});
