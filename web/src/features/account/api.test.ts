// Tests for the account calls: If-Match on profile changes, request shapes, and a wrong password
// (401) on erase or 2FA-off not ending the session.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { setUnauthorizedHandler } from '@/lib/api';
import {
  deleteAccount,
  disableTotp,
  enableTotp,
  exportData,
  getMe,
  listSessions,
  regenerateRecoveryCodes,
  savePreferences,
  setupTotp,
  updateProfile,
} from './api';

const user = { id: 'u1', email: 'a@example.com', name: 'Ada', role: 'user' };

afterEach(() => {
  vi.unstubAllGlobals();
  setUnauthorizedHandler(null);
});

function stub(status: number, body?: unknown, headers: Record<string, string> = {}) {
  const fetchMock = vi.fn(async () =>
    body === undefined
      ? new Response(null, { status, headers })
      : new Response(JSON.stringify(body), {
          status,
          headers: { 'Content-Type': status >= 400 ? 'application/problem+json' : 'application/json', ...headers },
        }),
  );
  vi.stubGlobal('fetch', fetchMock);
  return (i = 0) => {
    const [url, init] = fetchMock.mock.calls[i] as unknown as [string, RequestInit];
    return {
      url,
      method: init.method,
      body: init.body ? (JSON.parse(init.body as string) as unknown) : undefined,
      headers: init.headers as Record<string, string>,
    };
  };
}

describe('profile', () => {
  it('reads the ETag with the user', async () => {
    stub(200, user, { ETag: '"v1"' });
    await expect(getMe('tok')).resolves.toEqual({ user, etag: '"v1"' });
  });

  it('sends If-Match when the version is known, and only the changed fields', async () => {
    const sent = stub(200, { ...user, name: 'Ada L.' }, { ETag: '"v2"' });
    const result = await updateProfile('tok', 'u1', { name: 'Ada L.' }, '"v1"');
    expect(result.etag).toBe('"v2"');
    expect(sent()).toMatchObject({ url: '/api/users/u1', method: 'PATCH', body: { name: 'Ada L.' } });
    expect(sent().headers['If-Match']).toBe('"v1"');
  });

  it('leaves If-Match out without a version', async () => {
    const sent = stub(200, user);
    await updateProfile('tok', 'u1', { name: 'Ada' }, null);
    expect(sent().headers['If-Match']).toBeUndefined();
  });
});

describe('preferences and sessions', () => {
  it('PUTs the whole preferences document', async () => {
    const prefs = {
      theme: 'dark' as const,
      locale: 'en-GB',
      timezone: 'Europe/London',
      notifications: { task_assigned: true, mentioned: false, comments: true, security: true },
    };
    const sent = stub(200, prefs);
    await expect(savePreferences('tok', 'u1', prefs)).resolves.toEqual(prefs);
    expect(sent()).toMatchObject({ url: '/api/users/u1/preferences', method: 'PUT', body: prefs });
  });

  it('lists the items of /auth/sessions', async () => {
    stub(200, { items: [{ id: 's', created_at: 'x', last_used_at: 'x', current: true }], next_cursor: null });
    await expect(listSessions('tok')).resolves.toHaveLength(1);
  });
});

describe('password re-checks', () => {
  it('erases with the password in the body', async () => {
    const sent = stub(204);
    await deleteAccount('tok', 'u1', 'my long password here');
    expect(sent()).toMatchObject({ url: '/api/users/u1', method: 'DELETE', body: { current_password: 'my long password here' } });
  });

  it('downloads the export with a POST carrying the current password', async () => {
    const sent = stub(200, { format: 'trellis.export/1' });
    await exportData('tok', 'u1', 'my long password here');
    expect(sent()).toMatchObject({ url: '/api/users/u1/export', method: 'POST', body: { current_password: 'my long password here' } });
  });

  it('a wrong password is an error, not the end of the session', async () => {
    const ended = vi.fn();
    setUnauthorizedHandler(ended);
    stub(401, { title: 'Unauthorized', status: 401, detail: 'invalid credentials' });
    await expect(deleteAccount('tok', 'u1', 'wrong')).rejects.toMatchObject({ status: 401 });
    await expect(exportData('tok', 'u1', 'wrong')).rejects.toMatchObject({ status: 401 });
    await expect(disableTotp('tok', 'wrong')).rejects.toMatchObject({ status: 401 });
    await expect(setupTotp('tok', 'wrong')).rejects.toMatchObject({ status: 401 });
    await expect(regenerateRecoveryCodes('tok', 'wrong')).rejects.toMatchObject({ status: 401 });
    expect(ended).not.toHaveBeenCalled();
  });

  it('sends the current password with every second-factor change (step-up)', async () => {
    let sent = stub(200, { secret: 'S', otpauth_uri: 'otpauth://totp/x' });
    await setupTotp('tok', 'my long password here');
    expect(sent()).toMatchObject({ url: '/auth/mfa/totp/setup', method: 'POST', body: { current_password: 'my long password here' } });
    sent = stub(200, { recovery_codes: ['a'] });
    await expect(regenerateRecoveryCodes('tok', 'my long password here')).resolves.toEqual(['a']);
    expect(sent()).toMatchObject({ url: '/auth/mfa/recovery-codes', body: { current_password: 'my long password here' } });
    sent = stub(204);
    await disableTotp('tok', 'my long password here');
    expect(sent()).toMatchObject({ url: '/auth/mfa/totp/disable', body: { current_password: 'my long password here' } });
  });

  it('returns the recovery codes when 2FA is turned on', async () => {
    const sent = stub(200, { recovery_codes: ['a', 'b'] });
    await expect(enableTotp('tok', '123456')).resolves.toEqual(['a', 'b']);
    expect(sent()).toMatchObject({ url: '/auth/mfa/totp/enable', body: { code: '123456' } });
  });
});
