// API calls and TanStack Query hooks of the task details panel: the task with its ETag, the
// project (the caller's role), members and user names, comments and attachments (cursor pages).
import { useInfiniteQuery, useQueries, useQuery } from '@tanstack/react-query';
import { apiRequest, apiResponse, ApiError, readJson } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import type { Project, Page } from '@/features/projects/types';
import type { Member } from '@/features/members/types';
import type { Attachment, Comment, PublicUser, Task, TaskPatch, TaskWithEtag } from './types';

export const COMMENTS_PAGE = 50;
export const ATTACHMENTS_PAGE = 100;

const enc = encodeURIComponent;

/** A fresh key for `Idempotency-Key` (randomUUID needs a secure context; the key is optional). */
export function newIdempotencyKey(): string | undefined {
  return typeof crypto !== 'undefined' && typeof crypto.randomUUID === 'function' ? crypto.randomUUID() : undefined;
}

/** The URL of one page of a cursor-paged list. */
export function pageUrl(path: string, cursor: string | null, limit: number): string {
  const params = new URLSearchParams({ limit: String(limit) });
  if (cursor) params.set('cursor', cursor);
  return `${path}?${params.toString()}`;
}

export async function fetchTask(token: string, taskId: string, signal?: AbortSignal): Promise<TaskWithEtag> {
  const res = await apiResponse(`/api/tasks/${enc(taskId)}`, { token, signal });
  const task = await readJson<Task>(res);
  return { task, etag: res.headers.get('etag') };
}

export async function patchTask(token: string, taskId: string, patch: TaskPatch, etag: string | null): Promise<TaskWithEtag> {
  const res = await apiResponse(`/api/tasks/${enc(taskId)}`, {
    method: 'PATCH',
    token,
    body: patch,
    headers: etag ? { 'If-Match': etag } : undefined,
  });
  const task = await readJson<Task>(res);
  return { task, etag: res.headers.get('etag') };
}

export function deleteTask(token: string, taskId: string, etag: string | null): Promise<void> {
  return apiRequest<void>(`/api/tasks/${enc(taskId)}`, {
    method: 'DELETE',
    token,
    headers: etag ? { 'If-Match': etag } : undefined,
  });
}

export function createComment(token: string, taskId: string, body: string, idempotencyKey?: string): Promise<Comment> {
  return apiRequest<Comment>(`/api/tasks/${enc(taskId)}/comments`, {
    method: 'POST',
    token,
    body: { body },
    headers: idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : undefined,
  });
}

export function updateComment(token: string, commentId: string, body: string): Promise<Comment> {
  return apiRequest<Comment>(`/api/comments/${enc(commentId)}`, { method: 'PATCH', token, body: { body } });
}

export function deleteComment(token: string, commentId: string): Promise<void> {
  return apiRequest<void>(`/api/comments/${enc(commentId)}`, { method: 'DELETE', token });
}

export function deleteAttachment(token: string, attachmentId: string): Promise<void> {
  return apiRequest<void>(`/api/attachments/${enc(attachmentId)}`, { method: 'DELETE', token });
}

/** Whether an error is the API's "not found" (also what it answers for things one may not see). */
export function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404;
}

/** The task and the ETag of the last read. */
export function useTask(taskId: string) {
  const { accessToken } = useRequiredSession();
  return useQuery({
    queryKey: keys.task(taskId),
    queryFn: ({ signal }) => fetchTask(accessToken, taskId, signal),
  });
}

/** The project, for the caller's `role` in it. */
export function useProject(projectId: string) {
  const { accessToken } = useRequiredSession();
  return useQuery({
    queryKey: keys.project(projectId),
    queryFn: ({ signal }) => apiRequest<Project>(`/api/projects/${enc(projectId)}`, { token: accessToken, signal }),
  });
}

/** The project's members (user ids and roles). */
export function useMembers(projectId: string, enabled = true) {
  const { accessToken } = useRequiredSession();
  return useQuery({
    queryKey: keys.members(projectId),
    queryFn: ({ signal }) => apiRequest<Member[]>(`/api/projects/${enc(projectId)}/members`, { token: accessToken, signal }),
    enabled,
  });
}

const USER_STALE_MS = 5 * 60_000;

function userQuery(token: string, userId: string) {
  return {
    queryKey: keys.user(userId),
    queryFn: ({ signal }: { signal: AbortSignal }) => apiRequest<PublicUser>(`/api/users/${enc(userId)}`, { token, signal }),
    staleTime: USER_STALE_MS,
  };
}

/** A user's name (undefined while loading; "Former member" for a user who no longer exists). */
export function useUserName(userId: string | null | undefined): string | undefined {
  const { accessToken, user } = useRequiredSession();
  const query = useQuery({ ...userQuery(accessToken, userId ?? ''), enabled: !!userId && userId !== user.id });
  if (!userId) return undefined;
  if (userId === user.id) return user.name;
  if (query.data) return query.data.name;
  return isNotFound(query.error) ? 'Former member' : undefined;
}

/** Names of several users at once, as a map (missing while loading). */
export function useUserNames(userIds: readonly string[]): Record<string, string> {
  const { accessToken, user } = useRequiredSession();
  const ids = [...new Set(userIds)].filter((id) => id !== user.id);
  const results = useQueries({ queries: ids.map((id) => userQuery(accessToken, id)) });
  const names: Record<string, string> = { [user.id]: user.name };
  ids.forEach((id, i) => {
    const r = results[i];
    if (r?.data) names[id] = r.data.name;
    else if (r && isNotFound(r.error)) names[id] = 'Former member';
  });
  return names;
}

/** The task's comments, oldest first, a page at a time. */
export function useComments(taskId: string, enabled: boolean) {
  const { accessToken } = useRequiredSession();
  return useInfiniteQuery({
    queryKey: keys.comments(taskId),
    queryFn: ({ pageParam, signal }) =>
      apiRequest<Page<Comment>>(pageUrl(`/api/tasks/${enc(taskId)}/comments`, pageParam, COMMENTS_PAGE), { token: accessToken, signal }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    enabled,
  });
}

/** How often to look again while a file waits for its malware scan. */
export const SCAN_POLL_MS = 4_000;

/** The task's attachments; polled while one of them is still being scanned. */
export function useAttachments(taskId: string, enabled: boolean) {
  const { accessToken } = useRequiredSession();
  return useInfiniteQuery({
    queryKey: keys.attachments(taskId),
    queryFn: ({ pageParam, signal }) =>
      apiRequest<Page<Attachment>>(pageUrl(`/api/tasks/${enc(taskId)}/attachments`, pageParam, ATTACHMENTS_PAGE), {
        token: accessToken,
        signal,
      }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    enabled,
    refetchInterval: (query) =>
      query.state.data?.pages.some((p) => p.items.some((a) => a.status === 'quarantined')) ? SCAN_POLL_MS : false,
  });
}
