// Tests for the project calls: list URLs with cursor paging, create, read with ETag, conditional
// update and delete, and the query keys (live events invalidate by prefix).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { keys } from '@/lib/queryKeys';
import { createProject, deleteProject, getProject, ifMatch, listProjects, projectKeys, projectsUrl, projectUrl, updateProject } from './api';

afterEach(() => vi.unstubAllGlobals());

describe('projectsUrl', () => {
  it('asks for a page size and passes the cursor through, encoded', () => {
    expect(projectsUrl(null)).toBe('/api/projects?limit=20');
    expect(projectsUrl('abc+/=', 5)).toBe('/api/projects?limit=5&cursor=abc%2B%2F%3D');
  });
});

describe('project requests', () => {
  it('lists with the bearer token', async () => {
    const page = { items: [], next_cursor: null };
    const fetchMock = vi.fn(async () => new Response(JSON.stringify(page), { status: 200, headers: { 'Content-Type': 'application/json' } }));
    vi.stubGlobal('fetch', fetchMock);
    await expect(listProjects('tok', null)).resolves.toEqual(page);
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/projects?limit=20');
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer tok');
  });

  it('creates with name, description and an idempotency key', async () => {
    const project = { id: 'p1', name: 'Alpha', description: 'd', owner_id: 'u', role: 'owner', created_at: '', updated_at: '' };
    const fetchMock = vi.fn(async () => new Response(JSON.stringify(project), { status: 201, headers: { 'Content-Type': 'application/json' } }));
    vi.stubGlobal('fetch', fetchMock);
    await expect(createProject('tok', { name: 'Alpha', description: 'd' }, 'key-1')).resolves.toEqual(project);
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/projects');
    expect(init.method).toBe('POST');
    expect(JSON.parse(init.body as string)).toEqual({ name: 'Alpha', description: 'd' });
    expect((init.headers as Record<string, string>)['Idempotency-Key']).toBe('key-1');
  });
});

function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

const project = { id: 'p1', name: 'Alpha', description: '', owner_id: 'u', role: 'owner', created_at: '', updated_at: '' };

describe('query keys', () => {
  const startsWith = (key: readonly unknown[], prefix: readonly unknown[]) => prefix.every((part, i) => key[i] === part);

  it('keeps the list under keys.projects and one project under keys.project(id)', () => {
    expect(startsWith(projectKeys.list('u1'), keys.projects)).toBe(true);
    expect(projectKeys.list('u1')).not.toEqual(projectKeys.list('u2'));
    expect(startsWith(projectKeys.detail('p1'), keys.project('p1'))).toBe(true);
    expect(startsWith(projectKeys.detail('p1'), keys.project('p2'))).toBe(false);
  });
});

describe('one project', () => {
  it('encodes the id and builds If-Match only from a known ETag', () => {
    expect(projectUrl('a/b')).toBe('/api/projects/a%2Fb');
    expect(ifMatch('"v1"')).toEqual({ 'If-Match': '"v1"' });
    expect(ifMatch(null)).toBeUndefined();
    expect(ifMatch('')).toBeUndefined();
  });

  it('reads the project with its ETag', async () => {
    vi.stubGlobal('fetch', async () => jsonResponse(project, 200, { ETag: '"v1"' }));
    await expect(getProject('tok', 'p1')).resolves.toEqual({ project, etag: '"v1"' });
  });

  it('patches with If-Match and returns the new ETag', async () => {
    const fetchMock = vi.fn(async () => jsonResponse({ ...project, name: 'Beta' }, 200, { ETag: '"v2"' }));
    vi.stubGlobal('fetch', fetchMock);
    const result = await updateProject('tok', 'p1', { name: 'Beta' }, '"v1"');
    expect(result).toEqual({ project: { ...project, name: 'Beta' }, etag: '"v2"' });
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/projects/p1');
    expect(init.method).toBe('PATCH');
    expect(JSON.parse(init.body as string)).toEqual({ name: 'Beta' });
    expect((init.headers as Record<string, string>)['If-Match']).toBe('"v1"');
  });

  it('deletes without If-Match when no ETag is known, and surfaces a 412', async () => {
    const fetchMock = vi.fn(async () => new Response(null, { status: 204 }));
    vi.stubGlobal('fetch', fetchMock);
    await deleteProject('tok', 'p1', null);
    const [, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(init.method).toBe('DELETE');
    expect((init.headers as Record<string, string>)['If-Match']).toBeUndefined();

    vi.stubGlobal('fetch', async () =>
      new Response(JSON.stringify({ title: 'Precondition Failed', status: 412 }), { status: 412, headers: { 'Content-Type': 'application/problem+json' } }),
    );
    await expect(deleteProject('tok', 'p1', '"old"')).rejects.toMatchObject({ status: 412 });
  });
});
