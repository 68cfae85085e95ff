// Board data: the project, its members and their names, every task of the board (all pages up
// to a cap), one page of the list view, and the task writes the board makes (create, move).
import { keepPreviousData, useQueries, useQuery } from '@tanstack/react-query';
import { apiRequest } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import type { Project, Page } from '@/features/projects/types';
import type { Member } from '@/features/members/types';
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

export function newIdempotencyKey(): string {
  if (typeof crypto !== 'undefined' && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
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

export function useProject(projectId: string, enabled = true) {
  const { accessToken } = useRequiredSession();
  return useQuery({
    queryKey: keys.project(projectId),
    queryFn: ({ signal }) => apiRequest<Project>(`/api/projects/${enc(projectId)}`, { token: accessToken, signal }),
    enabled,
  });
}

/** The members (the API answers a plain array; a paged answer is tolerated too). */
export function useMembers(projectId: string, enabled = true) {
  const { accessToken } = useRequiredSession();
  return useQuery({
    queryKey: keys.members(projectId),
    queryFn: ({ signal }) => apiRequest<Member[] | Page<Member>>(`/api/projects/${enc(projectId)}/members`, { token: accessToken, signal }),
    select: (data): Member[] => (Array.isArray(data) ? data : (data?.items ?? [])),
    enabled,
  });
}

/** Names of users by id (GET /api/users/{id}, cached per user); missing while loading or unknown. */
export function useUserNames(ids: readonly string[]): Record<string, string | undefined> {
  const { accessToken, user } = useRequiredSession();
  const unique = [...new Set(ids)].filter(Boolean).sort();
  const results = useQueries({
    queries: unique.map((id) => ({
      queryKey: keys.user(id),
      queryFn: ({ signal }: { signal: AbortSignal }) => apiRequest<{ id: string; name: string }>(`/api/users/${enc(id)}`, { token: accessToken, signal }),
      staleTime: 5 * 60_000,
    })),
  });
  const names: Record<string, string | undefined> = {};
  unique.forEach((id, i) => {
    const r = results[i];
    names[id] = r?.data?.name ?? (id === user.id ? user.name : r?.isError ? 'Unknown user' : undefined);
  });
  return names;
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
