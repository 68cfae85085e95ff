// Tests for the auth calls: reading login answers (tokens vs. 2FA), and logout never throwing.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '@/lib/api';
import {
  confirmEmailChange,
  forgotPassword,
  interpretLogin,
  login,
  loginMfa,
  logout,
  register,
  resetPassword,
  undoEmailChange,
  verifyEmail,
} from './api';

const user = { id: '0190-u', email: 'a@example.com', name: 'Ada', role: 'user' };

afterEach(() => vi.unstubAllGlobals());

function json(status: number, body: unknown, type = 'application/json'): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': type } });
}

describe('interpretLogin', () => {
  it('reads a token answer into a session', () => {
    const now = 1_000_000;
    const result = interpretLogin(
      { access_token: 'at', token_type: 'Bearer', expires_in: 900, refresh_token: 'rt', user },
      now,
    );
    expect(result).toEqual({ kind: 'signed-in', session: { accessToken: 'at', expiresAt: now + 900_000, user } });
  });

  it('recognises a two-factor answer', () => {
    expect(interpretLogin({ mfa_required: true, mfa_token: 'm' })).toEqual({ kind: 'mfa-required', mfaToken: 'm' });
  });

  it('rejects an answer without a token', () => {
    expect(() => interpretLogin({ user })).toThrow(ApiError);
    expect(() => interpretLogin({ access_token: 'at' })).toThrow(ApiError);
    expect(() => interpretLogin(null)).toThrow(ApiError);
  });
});

describe('login and register', () => {
  it('posts credentials to /auth/login', async () => {
    const fetchMock = vi.fn(async () => json(200, { access_token: 'at', token_type: 'Bearer', expires_in: 900, refresh_token: 'rt', user }));
    vi.stubGlobal('fetch', fetchMock);
    const result = await login({ email: 'a@example.com', password: 'p'.repeat(20) });
    expect(result.kind).toBe('signed-in');
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/auth/login');
    expect(JSON.parse(init.body as string)).toEqual({ email: 'a@example.com', password: 'p'.repeat(20) });
  });

  it('surfaces "invalid credentials" from a 401', async () => {
    vi.stubGlobal('fetch', async () =>
      json(401, { type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'invalid credentials' }, 'application/problem+json'),
    );
    await expect(login({ email: 'a@example.com', password: 'x' })).rejects.toMatchObject({ status: 401, message: 'invalid credentials' });
  });

  it('returns the created user from /auth/register', async () => {
    const fetchMock = vi.fn(async () => json(201, { user }));
    vi.stubGlobal('fetch', fetchMock);
    await expect(register({ email: 'a@example.com', name: 'Ada', password: 'p'.repeat(20) })).resolves.toEqual(user);
    expect((fetchMock.mock.calls[0] as unknown as [string])[0]).toBe('/auth/register');
  });
});

describe('logout', () => {
  it('sends the bearer token and ignores failures', async () => {
    const fetchMock = vi.fn(async () => json(500, { title: 'boom' }, 'application/problem+json'));
    vi.stubGlobal('fetch', fetchMock);
    await expect(logout('tok')).resolves.toBeUndefined();
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/auth/logout');
    expect(init.method).toBe('POST');
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer tok');

    vi.stubGlobal('fetch', async () => {
      throw new TypeError('offline');
    });
    await expect(logout('tok')).resolves.toBeUndefined();
  });
});

describe('two-factor step and mailed links', () => {
  function capture(status: number, body?: unknown) {
    const fetchMock = vi.fn(async () =>
      body === undefined ? new Response(null, { status }) : json(status, body, status >= 400 ? 'application/problem+json' : 'application/json'),
    );
    vi.stubGlobal('fetch', fetchMock);
    return () => {
      const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
      return { url, method: init.method, body: JSON.parse(init.body as string) as unknown, headers: init.headers as Record<string, string> };
    };
  }

  it('sends the mfa token and code, in cookie mode', async () => {
    const sent = capture(200, { access_token: 'at', token_type: 'Bearer', expires_in: 900, user });
    const session = await loginMfa('mt', '123456');
    expect(session.accessToken).toBe('at');
    expect(sent()).toMatchObject({ url: '/auth/login/mfa', method: 'POST', body: { mfa_token: 'mt', code: '123456' } });
    expect(sent().headers['X-Trellis-Session']).toBe('cookie');
  });

  it('asks for a reset link', async () => {
    const sent = capture(202);
    await expect(forgotPassword('a@example.com')).resolves.toBeUndefined();
    expect(sent()).toMatchObject({ url: '/auth/password/forgot', method: 'POST', body: { email: 'a@example.com' } });
  });

  it('resets the password with token and new_password', async () => {
    const sent = capture(204);
    await resetPassword('tok', 'a new long password');
    expect(sent()).toMatchObject({ url: '/auth/password/reset', body: { token: 'tok', new_password: 'a new long password' } });
  });

  it('posts the two email-change links to their routes', async () => {
    let sent = capture(204);
    await confirmEmailChange('tok-new');
    expect(sent()).toMatchObject({ url: '/auth/email/change/confirm', method: 'POST', body: { token: 'tok-new' } });
    sent = capture(204);
    await undoEmailChange('tok-old');
    expect(sent()).toMatchObject({ url: '/auth/email/change/undo', method: 'POST', body: { token: 'tok-old' } });
  });

  it('surfaces a used reset or verification token as a 400', async () => {
    capture(400, { title: 'Bad Request', status: 400, detail: 'invalid or expired token' });
    await expect(verifyEmail('old')).rejects.toMatchObject({ status: 400, message: 'invalid or expired token' });
  });

  it('verifies an email with its token', async () => {
    const sent = capture(204);
    await verifyEmail('tok');
    expect(sent()).toMatchObject({ url: '/auth/email/verify', method: 'POST', body: { token: 'tok' } });
  });
});
