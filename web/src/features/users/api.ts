// Other people's names (GET /api/users/{id} answers `{id, name}` to non-admins): one cached query
// per user (`keys.user(id)`), shared by the board, the task drawer, members and the admin pages.
// The caller's own name comes from the session, never from a request.
import { useQueries, type UseQueryResult } from '@tanstack/react-query';
import { apiRequest, ApiError } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';

export type PublicUser = { id: string; name: string; email?: string };

/** Names change rarely; a live event does not carry them anyway. */
const USER_STALE_MS = 10 * 60_000;

/** The query of one user, for `useQuery`/`useQueries`. */
export function userQuery(token: string, userId: string) {
  return {
    queryKey: keys.user(userId),
    queryFn: ({ signal }: { signal: AbortSignal }) =>
      apiRequest<PublicUser>(`/api/users/${encodeURIComponent(userId)}`, { token, signal }),
    staleTime: USER_STALE_MS,
  };
}

/** What to show for a user: the name, a stand-in for one that no longer exists, or undefined while loading. */
export function nameOf(result: Pick<UseQueryResult<PublicUser>, 'data' | 'error'> | undefined): string | undefined {
  if (result?.data?.name) return result.data.name;
  if (result?.error instanceof ApiError && result.error.status === 404) return 'Former member';
  return result?.error ? 'Unknown user' : undefined;
}

/** One query result per id, in order (the caller's own answered from the session). */
export function useUsers(userIds: readonly string[]): UseQueryResult<PublicUser>[] {
  const { accessToken, user } = useRequiredSession();
  return useQueries({
    queries: userIds.map((id) => ({
      ...userQuery(accessToken, id),
      enabled: id !== user.id,
      initialData: id === user.id ? { id: user.id, name: user.name } : undefined,
    })),
  });
}

/** Names by id (see `nameOf`); duplicates and empty ids are ignored. */
export function useUserNames(userIds: readonly string[]): Record<string, string | undefined> {
  const unique = [...new Set(userIds)].filter(Boolean).sort();
  const results = useUsers(unique);
  const names: Record<string, string | undefined> = {};
  unique.forEach((id, i) => {
    names[id] = nameOf(results[i]);
  });
  return names;
}
