// Calls to the /auth endpoints (register, login with its 2FA step, silent refresh, logout,
// password reset, email verification) and reading their answers. The browser keeps the refresh token only in the server's `__Host-`
// cookie (docs/SECURITY.md SE-6): every call that may set or use it sends `X-Trellis-Session: cookie`.
import { apiRequest, ApiError } from '@/lib/api';
import type { Credentials, LoginResult, RegisterInput, Session, TokenResponse, User } from './types';

/** Asks for (and proves) cookie mode: a header no cross-site form or fetch can send. */
export const COOKIE_MODE = { 'X-Trellis-Session': 'cookie' } as const;

function unexpected(detail: string): ApiError {
  return new ApiError({ type: 'about:blank', title: 'Unexpected answer', status: 200, detail });
}

/** Reads a token answer (login, 2FA step, refresh) into a session. */
export function interpretTokens(body: unknown, now: number = Date.now()): Session {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Partial<TokenResponse>;
  if (typeof b.access_token !== 'string' || b.access_token === '' || typeof b.user !== 'object' || b.user === null) {
    throw unexpected('The sign-in answer had no access token.');
  }
  const expiresIn = typeof b.expires_in === 'number' && b.expires_in > 0 ? b.expires_in : 900;
  return { accessToken: b.access_token, expiresAt: now + expiresIn * 1000, user: b.user };
}

/** Reads a 200 answer of POST /auth/login: either tokens or "two-factor needed". */
export function interpretLogin(body: unknown, now: number = Date.now()): LoginResult {
  if (typeof body !== 'object' || body === null) throw unexpected('The sign-in answer was empty.');
  const b = body as { mfa_required?: unknown; mfa_token?: unknown };
  if (b.mfa_required === true) {
    return { kind: 'mfa-required', mfaToken: typeof b.mfa_token === 'string' ? b.mfa_token : '' };
  }
  return { kind: 'signed-in', session: interpretTokens(body, now) };
}

export async function login(credentials: Credentials): Promise<LoginResult> {
  const body = await apiRequest<unknown>('/auth/login', { method: 'POST', body: credentials, headers: COOKIE_MODE });
  return interpretLogin(body);
}

/** The second step of a 2FA sign-in: a TOTP code or a recovery code. */
export async function loginMfa(mfaToken: string, code: string): Promise<Session> {
  const body = await apiRequest<unknown>('/auth/login/mfa', {
    method: 'POST',
    body: { mfa_token: mfaToken, code },
    headers: COOKIE_MODE,
  });
  return interpretTokens(body);
}

/**
 * Trades the refresh cookie for a new token pair. `null` when there is no live session (no
 * cookie, or it was revoked or expired); throws only when the server cannot be reached.
 */
export async function refreshSession(): Promise<Session | null> {
  try {
    const body = await apiRequest<unknown>('/auth/refresh', { method: 'POST', headers: COOKIE_MODE });
    return interpretTokens(body);
  } catch (error) {
    if (error instanceof ApiError && error.status >= 400 && error.status < 500) return null;
    throw error;
  }
}

export async function register(input: RegisterInput): Promise<User> {
  const body = await apiRequest<{ user: User }>('/auth/register', { method: 'POST', body: input });
  return body.user;
}

/** Ends the session on the server (and deletes the cookie). Never throws. */
export async function logout(token: string): Promise<void> {
  try {
    await apiRequest<void>('/auth/logout', { method: 'POST', token, notifyUnauthorized: false });
  } catch {
    // Ignored on purpose: the token is forgotten on this side either way.
  }
}

/** Asks for a password-reset mail. The server answers 202 whatever the email, so this never tells. */
export async function forgotPassword(email: string): Promise<void> {
  await apiRequest<void>('/auth/password/forgot', { method: 'POST', body: { email } });
}

/** Sets a new password with the token from a reset mail; every session of the account ends. */
export async function resetPassword(token: string, newPassword: string): Promise<void> {
  await apiRequest<void>('/auth/password/reset', { method: 'POST', body: { token, new_password: newPassword } });
}

/** Confirms an email address with the token from a verification mail. */
export async function verifyEmail(token: string): Promise<void> {
  await apiRequest<void>('/auth/email/verify', { method: 'POST', body: { token } });
}

/** Applies an email change from the link mailed to the new address (`/confirm-email#token=…`). */
export async function confirmEmailChange(token: string): Promise<void> {
  await apiRequest<void>('/auth/email/change/confirm', { method: 'POST', body: { token }, notifyUnauthorized: false });
}

/**
 * Undoes an email change from the link mailed to the old address (`/undo-email-change#token=…`):
 * the old address comes back and every session of the account ends.
 */
export async function undoEmailChange(token: string): Promise<void> {
  await apiRequest<void>('/auth/email/change/undo', { method: 'POST', body: { token }, notifyUnauthorized: false });
}
