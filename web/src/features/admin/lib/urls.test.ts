// Tests for the admin URL builders and the confirmation rule.
import { describe, expect, it } from 'vitest';
import { auditUrl, confirmationFor, removesAdmin, filtersFromSearch, isUuid, shorten, usableQuery, usersUrl } from './urls';

const ID = '01a2111f-424d-72a8-bf2f-5e347bc6cdec';

describe('usersUrl', () => {
  it('sends only usable filters', () => {
    expect(usersUrl({ q: '', role: '', status: '' }, null)).toBe('/api/users?limit=25');
    expect(usersUrl({ q: '  ada  lovelace ', role: 'admin', status: 'inactive' }, 'abc')).toBe(
      '/api/users?q=ada+lovelace&role=admin&status=inactive&limit=25&cursor=abc',
    );
    expect(usersUrl({ q: 'a', role: 'boss', status: 'sleepy' }, null)).toBe('/api/users?limit=25');
  });

  it('needs a word of two letters or digits', () => {
    expect(usableQuery('a b')).toBe('');
    expect(usableQuery('é1')).toBe('é1');
    expect(usableQuery('@.')).toBe('');
  });
});

describe('auditUrl', () => {
  it('builds the query and drops a malformed actor id', () => {
    expect(auditUrl({ action: '', actor_id: '', from: '', to: '' }, null)).toBe('/api/admin/audit-log?limit=50');
    expect(
      auditUrl({ action: ' project.created ', actor_id: ID.toUpperCase(), from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:59.999Z' }, 'c1', 20),
    ).toBe(
      `/api/admin/audit-log?action=project.created&actor_id=${ID}&from=2026-01-01T00%3A00%3A00Z&to=2026-01-02T00%3A00%3A59.999Z&limit=20&cursor=c1`,
    );
    expect(auditUrl({ action: '', actor_id: 'not-an-id', from: '', to: '' }, null)).toBe('/api/admin/audit-log?limit=50');
  });

  it('knows a UUID', () => {
    expect(isUuid(ID)).toBe(true);
    expect(isUuid(`${ID}0`)).toBe(false);
  });
});

describe('filtersFromSearch', () => {
  it('reads the named parameters, empty when absent', () => {
    expect(filtersFromSearch(new URLSearchParams('q=ada&x=1'), ['q', 'role'] as const)).toEqual({ q: 'ada', role: '' });
  });
});

describe('confirmationFor', () => {
  const admin = { name: 'Ada', role: 'admin' as const, status: 'active' as const };
  const user = { name: 'Bob', role: 'user' as const, status: 'active' as const };

  it('asks before demoting an admin or deactivating', () => {
    expect(confirmationFor(admin, { role: 'user' }, false)).toBe(
      'Ada will no longer be an administrator (new role: user). Their sessions end at once.',
    );
    expect(confirmationFor(user, { status: 'inactive' }, false)).toMatch(/^Bob will be deactivated/);
    expect(confirmationFor(admin, { role: 'guest' }, true)).toMatch(/your own account/);
  });

  it('does not ask for harmless changes', () => {
    expect(confirmationFor(user, { role: 'admin' }, false)).toBeNull();
    expect(confirmationFor(user, { role: 'guest' }, false)).toBeNull();
    expect(confirmationFor({ ...user, status: 'inactive' }, { status: 'active' }, false)).toBeNull();
    expect(confirmationFor(admin, { role: 'admin' }, false)).toBeNull();
  });
});

describe('shorten', () => {
  it('keeps the start of long values', () => {
    expect(shorten('abcdef', 4)).toBe('abcd…');
    expect(shorten('abc', 4)).toBe('abc');
  });
});

describe('removesAdmin', () => {
  it('is true when an active admin loses the role or is deactivated', () => {
    const admin = { role: 'admin' as const, status: 'active' as const };
    expect(removesAdmin(admin, { role: 'user' })).toBe(true);
    expect(removesAdmin(admin, { status: 'inactive' })).toBe(true);
    expect(removesAdmin(admin, { role: 'admin' })).toBe(false);
    expect(removesAdmin({ role: 'admin', status: 'inactive' }, { role: 'user' })).toBe(false);
    expect(removesAdmin({ role: 'user', status: 'active' }, { status: 'inactive' })).toBe(false);
  });
});
