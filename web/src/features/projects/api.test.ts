// Tests for the project calls: list URLs with cursor paging, and the create request.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createProject, listProjects, projectsUrl } from './api';

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
