// Admin API calls and their TanStack Query hooks: users (search, role and status changes),
// the audit log (paged, with actor names) and its chain check, usage statistics.
import { useInfiniteQuery, useMutation, useQueries, useQuery, useQueryClient, type InfiniteData } from '@tanstack/react-query';
import { ApiError, apiRequest, apiResponse, readJson } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import type { AdminStats, AdminUser, AuditEntry, AuditVerification, Page, StatsPeriod } from './types';
import { auditUrl, usersUrl, type AuditFilters, type Change, type UserFilters } from './lib/urls';

/** Prefix of this page's user lists (kept apart from other features' user searches). */
const ADMIN_USERS = keys.users({ admin: '1' });

export function useAdminUsers(filters: UserFilters) {
  const { accessToken } = useRequiredSession();
  return useInfiniteQuery({
    queryKey: keys.users({ ...filters, admin: '1' }),
    queryFn: ({ pageParam, signal }) => apiRequest<Page<AdminUser>>(usersUrl(filters, pageParam), { token: accessToken, signal }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    placeholderData: (previous) => previous,
  });
}

/** The user as listed changed meanwhile (another admin, or the person themself). */
export class StaleUserError extends Error {
  constructor() {
    super('This user was changed since the list was loaded. The list has been refreshed: check and try again.');
    this.name = 'StaleUserError';
  }
}

/** The change would leave no active administrator (the server refuses it with 409). */
export class LastAdminError extends Error {
  constructor() {
    super('the last active administrator cannot be demoted or deactivated. Make someone else an administrator first.');
    this.name = 'LastAdminError';
  }
}

/** Whether a change takes an active admin out of the active admins. */
export function removesAdmin(user: Pick<AdminUser, 'role' | 'status'>, change: Change): boolean {
  if (user.role !== 'admin' || user.status !== 'active') return false;
  return (change.role !== undefined && change.role !== 'admin') || (change.status !== undefined && change.status !== 'active');
}

/**
 * Changes a user's role or status. Reads the user first for its ETag and checks it is still the
 * version the table shows, then sends the change with If-Match (412 if it moved in between).
 */
export function useUpdateUser() {
  const { accessToken } = useRequiredSession();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ user, change }: { user: AdminUser; change: Change }) => {
      const res = await apiResponse(`/api/users/${encodeURIComponent(user.id)}`, { token: accessToken });
      const etag = res.headers.get('ETag');
      const current = await readJson<AdminUser>(res);
      if (current.updated_at !== user.updated_at) throw new StaleUserError();
      if (removesAdmin(current, change)) {
        const admins = await apiRequest<Page<AdminUser>>(usersUrl({ q: '', role: 'admin', status: 'active' }, null, 2), { token: accessToken });
        if (!admins.items.some((a) => a.id !== user.id)) throw new LastAdminError();
      }
      return apiRequest<AdminUser>(`/api/users/${encodeURIComponent(user.id)}`, {
        method: 'PATCH',
        token: accessToken,
        body: change,
        headers: etag ? { 'If-Match': etag } : undefined,
      });
    },
    onSuccess: (updated) => {
      queryClient.setQueriesData<InfiniteData<Page<AdminUser>>>({ queryKey: ADMIN_USERS }, (data) =>
        data && Array.isArray(data.pages)
          ? { ...data, pages: data.pages.map((p) => ({ ...p, items: p.items.map((u) => (u.id === updated.id ? { ...u, ...updated } : u)) })) }
          : data,
      );
      queryClient.setQueryData(keys.user(updated.id), updated);
      void queryClient.invalidateQueries({ queryKey: ADMIN_USERS });
    },
    onError: (error) => {
      if (error instanceof StaleUserError || (error instanceof ApiError && error.status === 412)) {
        void queryClient.invalidateQueries({ queryKey: ADMIN_USERS });
      }
    },
  });
}

export function useAuditLog(filters: AuditFilters) {
  const { accessToken } = useRequiredSession();
  return useInfiniteQuery({
    queryKey: keys.auditLog(filters),
    queryFn: ({ pageParam, signal }) => apiRequest<Page<AuditEntry>>(auditUrl(filters, pageParam), { token: accessToken, signal }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    staleTime: 10_000,
  });
}

/** Names of the given user ids (the id itself until known, or when the user cannot be read). */
export function useUserNames(ids: string[]): Map<string, string> {
  const { accessToken } = useRequiredSession();
  const results = useQueries({
    queries: ids.map((id) => ({
      queryKey: keys.user(id),
      queryFn: ({ signal }: { signal: AbortSignal }) =>
        apiRequest<{ id: string; name: string }>(`/api/users/${encodeURIComponent(id)}`, { token: accessToken, signal }),
      staleTime: 5 * 60_000,
      retry: false,
    })),
  });
  const names = new Map<string, string>();
  results.forEach((result, i) => {
    if (result.data?.name) names.set(ids[i]!, result.data.name);
  });
  return names;
}

export function useVerifyChain() {
  const { accessToken } = useRequiredSession();
  return useMutation({
    mutationFn: () => apiRequest<AuditVerification>('/api/admin/audit-log/verify', { token: accessToken }),
  });
}

export function useStats(period: StatsPeriod) {
  const { accessToken } = useRequiredSession();
  return useQuery({
    queryKey: keys.stats(period),
    queryFn: ({ signal }) =>
      apiRequest<AdminStats>(`/api/admin/stats?period=${period}`, { token: accessToken, signal }),
    placeholderData: (previous) => previous,
    refetchInterval: 60_000,
  });
}

/** One scrape of /metrics as text (the bearer token is sent though the endpoint may not need it). */
export async function fetchMetrics(token: string, signal?: AbortSignal): Promise<string> {
  const res = await apiResponse('/metrics', { token, signal, headers: { Accept: 'text/plain' } });
  return res.text();
}
