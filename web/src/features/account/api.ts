// The signed-in person's own data: profile (with its ETag for If-Match), preferences (theme,
// locale, timezone, notifications), data export, account erasure, two-factor authentication,
// password change and sessions.
import { useQuery } from '@tanstack/react-query';
import { apiRequest, apiResponse, readJson } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import type { User } from '@/features/auth/types';
import type { Theme } from '@/lib/theme';

/** Email notification switches (OpenAPI `Notifications`); `security` cannot be turned off. */
export type Notifications = {
  task_assigned: boolean;
  mentioned: boolean;
  comments: boolean;
  security: boolean;
};

export type Preferences = {
  theme: Theme;
  locale: string;
  timezone: string;
  /** The four switches above, plus whatever a newer server adds (kept as it is when saving). */
  notifications: Notifications & Record<string, unknown>;
};

const userPath = (userId: string) => `/api/users/${encodeURIComponent(userId)}`;

export function getPreferences(token: string, userId: string, signal?: AbortSignal): Promise<Preferences> {
  return apiRequest<Preferences>(`${userPath(userId)}/preferences`, { token, signal });
}

export function usePreferences() {
  const session = useRequiredSession();
  return useQuery({
    queryKey: keys.preferences(session.user.id),
    queryFn: ({ signal }) => getPreferences(session.accessToken, session.user.id, signal),
    staleTime: 5 * 60_000,
  });
}

/** Replaces the preferences (PUT); the answer is what was stored. */
export function savePreferences(token: string, userId: string, preferences: Preferences): Promise<Preferences> {
  return apiRequest<Preferences>(`${userPath(userId)}/preferences`, { method: 'PUT', body: preferences, token });
}

/** The caller with the version (`ETag`) a later PATCH names in `If-Match`. */
export type VersionedUser = { user: User; etag: string | null };

/**
 * The query key of the caller's own profile with its ETag: under `keys.me`, so invalidating
 * `keys.me` refreshes it, but apart from a plain `User` others may keep at `keys.me`.
 */
export const profileKey = [...keys.me, 'versioned'] as const;

export async function getMe(token: string, signal?: AbortSignal): Promise<VersionedUser> {
  const res = await apiResponse('/api/users/me', { token, signal });
  return { user: await readJson<User>(res), etag: res.headers.get('ETag') };
}

export function useMe() {
  const session = useRequiredSession();
  return useQuery({
    queryKey: profileKey,
    queryFn: ({ signal }) => getMe(session.accessToken, signal),
  });
}

/**
 * `email` is only requested: the server answers 202 with the profile as it is and mails a link to
 * the new address; it needs `current_password` (step-up).
 */
export type ProfileChange = { name?: string; email?: string; current_password?: string };

/** PATCH /api/users/{id} with `If-Match` when the version is known (412 when someone changed it since). */
export async function updateProfile(token: string, userId: string, change: ProfileChange, etag: string | null): Promise<VersionedUser> {
  const res = await apiResponse(userPath(userId), {
    method: 'PATCH',
    body: change,
    token,
    headers: etag ? { 'If-Match': etag } : undefined,
    // With a password in it, a 401 is a refused password (`step_up_failed`), not an ended session.
    notifyUnauthorized: change.current_password === undefined,
  });
  return { user: await readJson<User>(res), etag: res.headers.get('ETag') };
}

/** Mails a new verification link (202; nothing is sent when already verified or too often). */
export async function resendVerification(token: string): Promise<void> {
  await apiRequest<void>('/auth/email/verify/resend', { method: 'POST', token });
}

/**
 * Every piece of personal data held about the user, as the JSON document the server sends:
 * POST /api/users/{id}/export with the current password (step-up; a GET is refused). A wrong
 * password is a 401 (`step_up_failed`) that does not end the session here.
 */
export async function exportData(token: string, userId: string, password: string): Promise<Blob> {
  const res = await apiResponse(`${userPath(userId)}/export`, {
    method: 'POST',
    body: { current_password: password },
    token,
    notifyUnauthorized: false,
  });
  return res.blob();
}

/**
 * Erases the caller's own account (GDPR Art. 17); the current password is the step-up proof. A
 * wrong password is a 401 that does not end the session here, hence `notifyUnauthorized: false`.
 */
export async function deleteAccount(token: string, userId: string, password: string): Promise<void> {
  await apiRequest<void>(userPath(userId), {
    method: 'DELETE',
    body: { current_password: password },
    token,
    notifyUnauthorized: false,
  });
}

export type TotpSetup = { secret: string; otpauth_uri: string };

/**
 * A new TOTP seed, not active until enabled with a code from it. The current password is the
 * step-up proof; a wrong one is a 401 (`step_up_failed`) that keeps the session.
 */
export function setupTotp(token: string, password: string): Promise<TotpSetup> {
  return apiRequest<TotpSetup>('/auth/mfa/totp/setup', {
    method: 'POST',
    body: { current_password: password },
    token,
    notifyUnauthorized: false,
  });
}

/** Ten new recovery codes (the earlier ones stop working); the current password is the proof. */
export async function regenerateRecoveryCodes(token: string, password: string): Promise<string[]> {
  const body = await apiRequest<{ recovery_codes: string[] }>('/auth/mfa/recovery-codes', {
    method: 'POST',
    body: { current_password: password },
    token,
    notifyUnauthorized: false,
  });
  return body.recovery_codes;
}

/** Turns 2FA on with a current code; the ten recovery codes come back only now. */
export async function enableTotp(token: string, code: string): Promise<string[]> {
  const body = await apiRequest<{ recovery_codes: string[] }>('/auth/mfa/totp/enable', { method: 'POST', body: { code }, token });
  return body.recovery_codes;
}

/** Turns 2FA off (password re-checked: a wrong one is a 401 that keeps the session). */
export async function disableTotp(token: string, password: string): Promise<void> {
  await apiRequest<void>('/auth/mfa/totp/disable', {
    method: 'POST',
    body: { current_password: password },
    token,
    notifyUnauthorized: false,
  });
}

/** Changes the password; the caller's other sessions end. */
export async function changePassword(token: string, currentPassword: string, newPassword: string): Promise<void> {
  await apiRequest<void>('/auth/password/change', {
    method: 'POST',
    body: { current_password: currentPassword, new_password: newPassword },
    token,
  });
}

export type SessionInfo = {
  id: string;
  created_at: string;
  last_used_at: string;
  user_agent?: string | null;
  ip?: string | null;
  current: boolean;
};

export async function listSessions(token: string, signal?: AbortSignal): Promise<SessionInfo[]> {
  const body = await apiRequest<{ items: SessionInfo[] }>('/auth/sessions', { token, signal });
  return body.items;
}

export function useSessions() {
  const session = useRequiredSession();
  return useQuery({
    queryKey: keys.sessions,
    queryFn: ({ signal }) => listSessions(session.accessToken, signal),
  });
}

/** Ends one of the caller's sessions (another device). */
export async function revokeSession(token: string, sessionId: string): Promise<void> {
  await apiRequest<void>(`/auth/sessions/${encodeURIComponent(sessionId)}`, { method: 'DELETE', token });
}

/** Ends every session of the caller, this one included. */
export async function logoutAll(token: string): Promise<void> {
  await apiRequest<void>('/auth/logout-all', { method: 'POST', token });
}
