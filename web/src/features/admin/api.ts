// Admin API calls and their TanStack Query hooks: users (search, role and status changes),
// the audit log (paged, with actor names) and its chain check, usage statistics.
import { useInfiniteQuery, useMutation, useQueries, useQuery, useQueryClient, type InfiniteData } from '@tanstack/react-query';
import { ApiError, apiRequest, apiResponse } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import { userQuery } from '@/features/users/api';
import type { AdminStats, AdminUser, AuditEntry, AuditVerification, Page, StatsPeriod } from './types';
import { auditUrl, removesAdmin, usersUrl, type AuditFilters, type Change, type UserFilters } from './lib/urls';

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

/** The change would leave no active administrator (the server refuses it with 409). */
export class LastAdminError extends Error {
  constructor() {
    super('the last active administrator cannot be demoted or deactivated. Make someone else an administrator first.');
    this.name = 'LastAdminError';
  }
}

/**
 * Changes a user's role or status. The list carries no ETag, and reading the user for one would
 * be recorded in the audit log (`users.profile_viewed`) on every change, so no If-Match is sent.
 * Taking the last active admin away is refused here, before the server would answer 409.
 */
export function useUpdateUser() {
  const { accessToken } = useRequiredSession();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ user, change, password }: { user: AdminUser; change: Change; password: string }) => {
      if (removesAdmin(user, change)) {
        const admins = await apiRequest<Page<AdminUser>>(usersUrl({ q: '', role: 'admin', status: 'active' }, null, 2), { token: accessToken });
        if (!admins.items.some((a) => a.id !== user.id)) throw new LastAdminError();
      }
      // The admin's own current password is the step-up proof the server needs with the change;
      // a wrong one is a 401 (`step_up_failed`) that does not end the session.
      return apiRequest<AdminUser>(`/api/users/${encodeURIComponent(user.id)}`, {
        method: 'PATCH',
        token: accessToken,
        body: { ...change, current_password: password },
        notifyUnauthorized: false,
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
      if (error instanceof ApiError && (error.status === 409 || error.status === 404)) {
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

/** How many users the name directory reads (pages of 100) before asking for single users. */
const DIRECTORY_PAGES = 3;

type Directory = { names: Map<string, string>; complete: boolean };

/**
 * Names of the given user ids. They come from the user list (GET /api/users, up to 300 users;
 * each page is recorded once as `users.searched`): reading single users (GET /api/users/{id}) is
 * recorded per user as `users.profile_viewed`, so viewing the log would keep adding more. Only when the directory is
 * incomplete are the missing users read one by one. Unknown ids (erased users) stay ids.
 */
export function useUserNames(ids: string[]): Map<string, string> {
  const { accessToken } = useRequiredSession();
  const directory = useQuery({
    queryKey: keys.users({ admin: '1', directory: '1' }),
    queryFn: async ({ signal }): Promise<Directory> => {
      const names = new Map<string, string>();
      let cursor: string | null = null;
      for (let page = 0; page < DIRECTORY_PAGES; page++) {
        const result: Page<AdminUser> = await apiRequest<Page<AdminUser>>(usersUrl({ q: '', role: '', status: '' }, cursor, 100), { token: accessToken, signal });
        for (const u of result.items) names.set(u.id, u.name);
        cursor = result.next_cursor ?? null;
        if (!cursor) return { names, complete: true };
      }
      return { names, complete: false };
    },
    enabled: ids.length > 0,
    staleTime: 5 * 60_000,
  });
  const missing = directory.data && !directory.data.complete ? ids.filter((id) => !directory.data.names.has(id)) : [];
  const singles = useQueries({
    queries: missing.map((id) => ({ ...userQuery(accessToken, id), retry: false })),
  });
  const names = new Map(directory.data?.names ?? []);
  singles.forEach((result, i) => {
    if (result.data?.name) names.set(missing[i]!, result.data.name);
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
