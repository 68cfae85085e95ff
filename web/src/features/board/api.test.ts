// Tests for loading the whole board page by page, up to the cap.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fetchBoardTasks } from './api';

function pages(total: number, size: number) {
  const urls: string[] = [];
  vi.stubGlobal('fetch', async (url: string) => {
    urls.push(url);
    const u = new URL(url, 'http://x');
    const start = Number(u.searchParams.get('cursor') ?? 0);
    const items = Array.from({ length: Math.min(size, total - start) }, (_, i) => ({ id: `t${start + i}`, status: 'todo' }));
    const next = start + size < total ? String(start + size) : null;
    return new Response(JSON.stringify({ items, next_cursor: next }), { status: 200, headers: { 'content-type': 'application/json' } });
  });
  return urls;
}

afterEach(() => vi.unstubAllGlobals());

describe('fetchBoardTasks', () => {
  it('follows cursors until the last page', async () => {
    const urls = pages(250, 100);
    const data = await fetchBoardTasks('tok', 'p1');
    expect(data.items).toHaveLength(250);
    expect(data.truncated).toBe(false);
    expect(urls).toEqual([
      '/api/projects/p1/tasks?sort=position&limit=100',
      '/api/projects/p1/tasks?sort=position&limit=100&cursor=100',
      '/api/projects/p1/tasks?sort=position&limit=100&cursor=200',
    ]);
  });
  it('stops at the cap and says the board is truncated', async () => {
    const urls = pages(1000, 100);
    const data = await fetchBoardTasks('tok', 'p1', undefined, 300);
    expect(data.items).toHaveLength(300);
    expect(data.truncated).toBe(true);
    expect(urls).toHaveLength(3);
  });
  it('an empty project is one request', async () => {
    const urls = pages(0, 100);
    expect(await fetchBoardTasks('tok', 'p1')).toEqual({ items: [], truncated: false });
    expect(urls).toHaveLength(1);
  });
});
