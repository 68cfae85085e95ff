// API calls and TanStack Query hooks of the task details panel: the task with its ETag, comments
// and attachments (cursor pages). The project, its members and people's names come from their
// own features' hooks.
import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { apiRequest, apiResponse, ApiError, readJson } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import type { Page } from '@/features/projects/types';
import type { Attachment, Comment, Task, TaskPatch, TaskWithEtag } from './types';

export const COMMENTS_PAGE = 50;
export const ATTACHMENTS_PAGE = 100;

const enc = encodeURIComponent;

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
