// The signed-in person's own data: profile, preferences (theme, locale, timezone, notifications).
import { useQuery } from '@tanstack/react-query';
import { apiRequest } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import type { Theme } from '@/lib/theme';

export type Preferences = {
  theme: Theme;
  locale: string;
  timezone: string;
  notifications: Record<string, unknown>;
};

export function getPreferences(token: string, userId: string, signal?: AbortSignal): Promise<Preferences> {
  return apiRequest<Preferences>(`/api/users/${encodeURIComponent(userId)}/preferences`, { token, signal });
}

export function usePreferences() {
  const session = useRequiredSession();
  return useQuery({
    queryKey: keys.preferences(session.user.id),
    queryFn: ({ signal }) => getPreferences(session.accessToken, session.user.id, signal),
    staleTime: 5 * 60_000,
  });
}
