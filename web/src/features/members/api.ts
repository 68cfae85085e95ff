// Member and people API calls with their TanStack Query hooks: the member list (shared with the
// board and the task drawer), the person search behind "Find a person", add / change role /
// remove. Names of people come from `@/features/users/api`.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { apiRequest, newIdempotencyKey } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import { projectKeys } from '@/features/projects/api';
import type { Member, PublicUser, UserPage } from './types';
import type { Role } from './logic';

export function membersUrl(projectId: string, userId?: string): string {
  const base = `/api/projects/${encodeURIComponent(projectId)}/members`;
  return userId ? `${base}/${encodeURIComponent(userId)}` : base;
}

export const PEOPLE_LIMIT = 8;

/** The URL of a person search (`GET /api/users?q=`): each word begins a word of a name or email. */
export function peopleUrl(q: string, limit: number = PEOPLE_LIMIT): string {
  return `/api/users?${new URLSearchParams({ q: q.trim(), limit: String(limit) }).toString()}`;
}

export function listMembers(token: string, projectId: string, signal?: AbortSignal): Promise<Member[]> {
  return apiRequest<Member[]>(membersUrl(projectId), { token, signal });
}

export function searchPeople(token: string, q: string, signal?: AbortSignal): Promise<UserPage> {
  return apiRequest<UserPage>(peopleUrl(q), { token, signal });
}

export function addMember(token: string, projectId: string, userId: string, role: Role, idempotencyKey?: string): Promise<Member> {
  return apiRequest<Member>(membersUrl(projectId), {
    method: 'POST',
    token,
    body: { user_id: userId, role },
    headers: idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : undefined,
  });
}

/**
 * Adds a member by exact email address: 202 `{email, role}` whether or not the address has an
 * account (an account is added, an unknown address is mailed an invitation to register).
 */
export function addMemberByEmail(token: string, projectId: string, email: string, role: Role): Promise<{ email: string; role: Role }> {
  return apiRequest<{ email: string; role: Role }>(membersUrl(projectId), { method: 'POST', token, body: { email, role } });
}

export function changeRole(token: string, projectId: string, userId: string, role: Role): Promise<Member> {
  return apiRequest<Member>(membersUrl(projectId, userId), { method: 'PATCH', token, body: { role } });
}

export function removeMember(token: string, projectId: string, userId: string): Promise<void> {
  return apiRequest<void>(membersUrl(projectId, userId), { method: 'DELETE', token });
}

/**
 * The member list sits under `keys.members(projectId)` (a live `member.changed` invalidates it)
 * with its own suffix, so its shape never clashes with another feature's query there.
 */
export const memberKeys = {
  list: (projectId: string) => [...keys.members(projectId), 'list'] as const,
  people: (q: string) => keys.users({ q: q.trim(), scope: 'people' }),
};

export function useMembers(projectId: string, enabled = true) {
  const session = useRequiredSession();
  return useQuery({
    queryKey: memberKeys.list(projectId),
    queryFn: ({ signal }) => listMembers(session.accessToken, projectId, signal),
    enabled,
  });
}

export function usePeopleSearch(q: string, enabled: boolean) {
  const session = useRequiredSession();
  return useQuery({
    queryKey: memberKeys.people(q),
    queryFn: ({ signal }) => searchPeople(session.accessToken, q, signal),
    enabled,
    staleTime: 60_000,
  });
}

/**
 * After a member change: the member list; when the caller's own role changed, also the project
 * (its `role`) and the project list. (A live `member.changed` invalidates these too; requests
 * are rate-limited, so nothing more is refetched.)
 */
function useInvalidateMembers(projectId: string) {
  const queryClient = useQueryClient();
  const session = useRequiredSession();
  return (userId?: string) => {
    void queryClient.invalidateQueries({ queryKey: keys.members(projectId) });
    if (userId === session.user.id) {
      void queryClient.invalidateQueries({ queryKey: keys.project(projectId) });
      void queryClient.invalidateQueries({ queryKey: projectKeys.all });
    }
  };
}

export function useAddMember(projectId: string) {
  const session = useRequiredSession();
  const invalidate = useInvalidateMembers(projectId);
  return useMutation({
    mutationFn: ({ user, role }: { user: PublicUser; role: Role }) =>
      addMember(session.accessToken, projectId, user.id, role, newIdempotencyKey()),
    onSuccess: () => invalidate(),
  });
}

export function useAddMemberByEmail(projectId: string) {
  const session = useRequiredSession();
  const invalidate = useInvalidateMembers(projectId);
  return useMutation({
    mutationFn: ({ email, role }: { email: string; role: Role }) => addMemberByEmail(session.accessToken, projectId, email, role),
    onSuccess: () => invalidate(),
  });
}

export function useChangeRole(projectId: string) {
  const session = useRequiredSession();
  const invalidate = useInvalidateMembers(projectId);
  return useMutation({
    mutationFn: ({ userId, role }: { userId: string; role: Role }) => changeRole(session.accessToken, projectId, userId, role),
    onSettled: (_data, _error, { userId }) => invalidate(userId),
  });
}

export function useRemoveMember(projectId: string) {
  const session = useRequiredSession();
  const invalidate = useInvalidateMembers(projectId);
  return useMutation({
    mutationFn: (userId: string) => removeMember(session.accessToken, projectId, userId),
    onSuccess: () => invalidate(),
  });
}

/** Leaving: the page navigates away, then calls `forgetProject` (nothing refetches into a 404). */
export function useLeaveProject(projectId: string) {
  const session = useRequiredSession();
  return useMutation({
    mutationFn: () => removeMember(session.accessToken, projectId, session.user.id),
  });
}
