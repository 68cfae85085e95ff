// Project API calls and their TanStack Query hooks: the list (cursor paging), create, and one
// project with its ETag (read, rename, delete with If-Match).
import { useInfiniteQuery, useMutation, useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { ApiError, apiRequest, apiResponse, newIdempotencyKey, readJson } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import type { NewProject, Page, Project, ProjectChanges, VersionedProject } from './types';

export const PAGE_SIZE = 20;

/** The URL of one page of the project list. */
export function projectsUrl(cursor: string | null, limit: number = PAGE_SIZE): string {
  const params = new URLSearchParams({ limit: String(limit) });
  if (cursor) params.set('cursor', cursor);
  return `/api/projects?${params.toString()}`;
}

/** The URL of one project. */
export function projectUrl(projectId: string): string {
  return `/api/projects/${encodeURIComponent(projectId)}`;
}

/** Headers for a conditional write: `If-Match` when the ETag is known. */
export function ifMatch(etag: string | null | undefined): Record<string, string> | undefined {
  return etag ? { 'If-Match': etag } : undefined;
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

export async function getProject(token: string, projectId: string, signal?: AbortSignal): Promise<VersionedProject> {
  const res = await apiResponse(projectUrl(projectId), { token, signal });
  const etag = res.headers.get('etag');
  const project = await readJson<Project>(res);
  return { project, etag };
}

export async function updateProject(
  token: string,
  projectId: string,
  changes: ProjectChanges,
  etag: string | null,
): Promise<VersionedProject> {
  const res = await apiResponse(projectUrl(projectId), { method: 'PATCH', token, body: changes, headers: ifMatch(etag) });
  const next = res.headers.get('etag');
  const project = await readJson<Project>(res);
  return { project, etag: next };
}

export function deleteProject(token: string, projectId: string, etag: string | null): Promise<void> {
  return apiRequest<void>(projectUrl(projectId), { method: 'DELETE', token, headers: ifMatch(etag) });
}

/**
 * Query keys. The list sits under `keys.projects` (a live `project.updated` invalidates it) and
 * is per user, so one person never sees another's cached list. One project with its ETag sits
 * under `keys.project(id)` (invalidated by live events) with its own suffix, so its shape never
 * clashes with another feature's plain `Project` under the same prefix.
 */
export const projectKeys = {
  all: keys.projects,
  list: (userId: string) => [...keys.projects, 'list', userId] as const,
  detail: (projectId: string) => [...keys.project(projectId), 'versioned'] as const,
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

/** One project and its ETag. `enabled: false` stops fetching (e.g. after access was lost). */
export function useProject(projectId: string, enabled = true) {
  const session = useRequiredSession();
  return useQuery({
    queryKey: projectKeys.detail(projectId),
    queryFn: ({ signal }) => getProject(session.accessToken, projectId, signal),
    enabled,
  });
}

export function useCreateProject() {
  const session = useRequiredSession();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (input: NewProject) => createProject(session.accessToken, input, newIdempotencyKey()),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: projectKeys.all }),
  });
}

export function useUpdateProject(projectId: string) {
  const session = useRequiredSession();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ changes, etag }: { changes: ProjectChanges; etag: string | null }) =>
      updateProject(session.accessToken, projectId, changes, etag),
    onSuccess: (versioned) => {
      queryClient.setQueryData(projectKeys.detail(projectId), versioned);
      void queryClient.invalidateQueries({ queryKey: keys.project(projectId) });
      void queryClient.invalidateQueries({ queryKey: projectKeys.all });
    },
    onError: (error) => {
      // Stale If-Match: fetch the current version (and its ETag).
      if (error instanceof ApiError && error.status === 412) void queryClient.invalidateQueries({ queryKey: keys.project(projectId) });
    },
  });
}

/**
 * Drops everything cached about a project the caller can no longer see (deleted, or they left)
 * and refreshes the project list. Call it after leaving the project's pages, so nothing on
 * screen refetches into a 404.
 */
export function forgetProject(queryClient: QueryClient, projectId: string): void {
  queryClient.removeQueries({ queryKey: keys.project(projectId) });
  queryClient.removeQueries({ queryKey: keys.members(projectId) });
  queryClient.removeQueries({ queryKey: keys.tasks(projectId) });
  void queryClient.invalidateQueries({ queryKey: projectKeys.all });
}

export function useDeleteProject(projectId: string) {
  const session = useRequiredSession();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (etag: string | null) => deleteProject(session.accessToken, projectId, etag),
    onError: (error) => {
      if (error instanceof ApiError && error.status === 412) void queryClient.invalidateQueries({ queryKey: keys.project(projectId) });
    },
  });
}
