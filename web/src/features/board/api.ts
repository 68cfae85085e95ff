// Board data: every task of the board (all pages up to a cap), one page of the list view, and the
// task writes the board makes (create, move). The project, its members and people's names come
// from the projects, members and users features.
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { apiRequest } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import type { Page } from '@/features/projects/types';
import type { Task, TaskStatus } from '@/features/tasks/types';
import { tasksUrl } from './filters';

/** The board asks for 100 tasks a page and stops after this many. */
export const BOARD_PAGE_SIZE = 100;
export const BOARD_CAP = 500;
export const LIST_PAGE_SIZE = 25;

/** The board's query filters (its key is `keys.taskList(projectId, BOARD_FILTERS)`). */
export const BOARD_FILTERS: Record<string, string> = { view: 'board', sort: 'position' };
export const boardKey = (projectId: string) => keys.taskList(projectId, BOARD_FILTERS);

export type BoardData = { items: Task[]; truncated: boolean };

const enc = encodeURIComponent;

/** Every task of the project in board order, page after page, up to `cap`. */
export async function fetchBoardTasks(token: string, projectId: string, signal?: AbortSignal, cap = BOARD_CAP): Promise<BoardData> {
  const items: Task[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<Task> = await apiRequest<Page<Task>>(tasksUrl(projectId, { sort: 'position' }, cursor, BOARD_PAGE_SIZE), { token, signal });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < cap);
  return { items: items.slice(0, cap), truncated: cursor !== null || items.length > cap };
}

export function createTask(token: string, projectId: string, input: { title: string; status: TaskStatus }, idempotencyKey: string): Promise<Task> {
  return apiRequest<Task>(`/api/projects/${enc(projectId)}/tasks`, {
    method: 'POST',
    token,
    body: input,
    headers: { 'Idempotency-Key': idempotencyKey },
  });
}

export function patchTask(token: string, taskId: string, body: Record<string, unknown>): Promise<Task> {
  return apiRequest<Task>(`/api/tasks/${enc(taskId)}`, { method: 'PATCH', token, body });
}

export function useBoardTasks(projectId: string, enabled = true) {
  const { accessToken } = useRequiredSession();
  return useQuery({
    queryKey: boardKey(projectId),
    queryFn: ({ signal }) => fetchBoardTasks(accessToken, projectId, signal),
    enabled,
  });
}

/** One page of the list view (the previous page stays on screen while the next loads). */
export function useTaskPage(projectId: string, params: Record<string, string>, cursor: string | null, enabled = true) {
  const { accessToken } = useRequiredSession();
  return useQuery({
    queryKey: keys.taskList(projectId, { ...params, view: 'list', cursor: cursor ?? '' }),
    queryFn: ({ signal }) => apiRequest<Page<Task>>(tasksUrl(projectId, params, cursor, LIST_PAGE_SIZE), { token: accessToken, signal }),
    placeholderData: keepPreviousData,
    enabled,
  });
}
