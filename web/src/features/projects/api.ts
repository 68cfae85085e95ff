// Project API calls and their TanStack Query hooks (list with cursor paging, create).
import { useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query';
import { apiRequest } from '@/lib/api';
import { useRequiredSession } from '@/features/auth/session';
import type { NewProject, Page, Project } from './types';

export const PAGE_SIZE = 20;

/** The URL of one page of the project list. */
export function projectsUrl(cursor: string | null, limit: number = PAGE_SIZE): string {
  const params = new URLSearchParams({ limit: String(limit) });
  if (cursor) params.set('cursor', cursor);
  return `/api/projects?${params.toString()}`;
}

export function listProjects(token: string, cursor: string | null, signal?: AbortSignal): Promise<Page<Project>> {
  return apiRequest<Page<Project>>(projectsUrl(cursor), { token, signal });
}

export function createProject(token: string, input: NewProject, idempotencyKey?: string): Promise<Project> {
  return apiRequest<Project>('/api/projects', {
    method: 'POST',
    token,
    body: input,
    headers: idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : undefined,
  });
}

/** Query keys are per user, so one person never sees another's cached list. */
export const projectKeys = {
  all: ['projects'] as const,
  list: (userId: string) => ['projects', 'list', userId] as const,
};

export function useProjects() {
  const session = useRequiredSession();
  return useInfiniteQuery({
    queryKey: projectKeys.list(session.user.id),
    queryFn: ({ pageParam, signal }) => listProjects(session.accessToken, pageParam, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
}

function newIdempotencyKey(): string | undefined {
  // randomUUID exists only in secure contexts (https, localhost); the key is optional.
  return typeof crypto !== 'undefined' && typeof crypto.randomUUID === 'function' ? crypto.randomUUID() : undefined;
}

export function useCreateProject() {
  const session = useRequiredSession();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (input: NewProject) => createProject(session.accessToken, input, newIdempotencyKey()),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: projectKeys.all }),
  });
}
