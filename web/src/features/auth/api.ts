// Calls to the /auth endpoints (register, login, logout) and reading their answers.
import { apiRequest, ApiError } from '@/lib/api';
import type { Credentials, LoginResult, RegisterInput, TokenResponse, User } from './types';

function unexpected(detail: string): ApiError {
  return new ApiError({ type: 'about:blank', title: 'Unexpected answer', status: 200, detail });
}

/** Reads a 200 answer of POST /auth/login: either tokens or "two-factor needed". */
export function interpretLogin(body: unknown, now: number = Date.now()): LoginResult {
  if (typeof body !== 'object' || body === null) throw unexpected('The sign-in answer was empty.');
  const b = body as Partial<TokenResponse> & { mfa_required?: unknown; mfa_token?: unknown };
  if (b.mfa_required === true) {
    return { kind: 'mfa-required', mfaToken: typeof b.mfa_token === 'string' ? b.mfa_token : '' };
  }
  if (typeof b.access_token !== 'string' || b.access_token === '' || typeof b.user !== 'object' || b.user === null) {
    throw unexpected('The sign-in answer had no access token.');
  }
  const expiresIn = typeof b.expires_in === 'number' && b.expires_in > 0 ? b.expires_in : 900;
  return {
    kind: 'signed-in',
    session: { accessToken: b.access_token, expiresAt: now + expiresIn * 1000, user: b.user },
  };
}

export async function login(credentials: Credentials): Promise<LoginResult> {
  const body = await apiRequest<unknown>('/auth/login', { method: 'POST', body: credentials });
  return interpretLogin(body);
}

export async function register(input: RegisterInput): Promise<User> {
  const body = await apiRequest<{ user: User }>('/auth/register', { method: 'POST', body: input });
  return body.user;
}

/** Ends the session on the server. Never throws: signing out locally must always work. */
export async function logout(token: string): Promise<void> {
  try {
    await apiRequest<void>('/auth/logout', { method: 'POST', token, notifyUnauthorized: false });
  } catch {
    // Ignored on purpose: the token is forgotten on this side either way.
  }
}
