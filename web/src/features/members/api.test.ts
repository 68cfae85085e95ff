// Tests for the member and people calls: URLs, request bodies, and the query keys' prefixes.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { keys } from '@/lib/queryKeys';
import { addMember, addMemberByEmail, changeRole, memberKeys, membersUrl, peopleUrl, removeMember } from './api';

afterEach(() => vi.unstubAllGlobals());

function capture() {
  const fetchMock = vi.fn(async () => new Response(JSON.stringify({}), { status: 200, headers: { 'Content-Type': 'application/json' } }));
  vi.stubGlobal('fetch', fetchMock);
  return () => {
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    return { url, method: init.method, body: init.body ? JSON.parse(init.body as string) : undefined, headers: init.headers as Record<string, string> };
  };
}

describe('URLs and keys', () => {
  it('builds member and people URLs, encoded', () => {
    expect(membersUrl('p1')).toBe('/api/projects/p1/members');
    expect(membersUrl('p1', 'u/1')).toBe('/api/projects/p1/members/u%2F1');
    expect(peopleUrl(' ann@example.com ')).toBe('/api/users?q=ann%40example.com&limit=8');
  });

  it('keeps the member list under keys.members(projectId)', () => {
    const prefix = keys.members('p1');
    expect(memberKeys.list('p1').slice(0, prefix.length)).toEqual([...prefix]);
  });
});

describe('member requests', () => {
  it('adds with user_id, role and an idempotency key', async () => {
    const call = capture();
    await addMember('tok', 'p1', 'u2', 'editor', 'k1');
    expect(call()).toMatchObject({ url: '/api/projects/p1/members', method: 'POST', body: { user_id: 'u2', role: 'editor' } });
    expect(call().headers['Idempotency-Key']).toBe('k1');
  });

  it('adds by exact email address with {email, role}', async () => {
    const call = capture();
    await addMemberByEmail('tok', 'p1', 'ann@example.com', 'viewer');
    expect(call()).toMatchObject({ url: '/api/projects/p1/members', method: 'POST', body: { email: 'ann@example.com', role: 'viewer' } });
  });

  it('changes a role and removes', async () => {
    let call = capture();
    await changeRole('tok', 'p1', 'u2', 'viewer');
    expect(call()).toMatchObject({ url: '/api/projects/p1/members/u2', method: 'PATCH', body: { role: 'viewer' } });
    call = capture();
    await removeMember('tok', 'p1', 'u2');
    expect(call()).toMatchObject({ url: '/api/projects/p1/members/u2', method: 'DELETE' });
  });
});
