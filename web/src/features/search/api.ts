// GET /api/search as a TanStack infinite query (cursor paging) under `keys.search(q)`, and a
// debounced value hook for search-as-you-type.
import { useEffect, useMemo, useState } from 'react';
import { keepPreviousData, useInfiniteQuery } from '@tanstack/react-query';
import { apiRequest } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import { debounce, normalizeQuery, searchUrl } from './logic';
import type { SearchPage } from './types';

/** A page of results with the query that found them (for highlighting kept-over results). */
export type AnsweredPage = SearchPage & { q: string };

export async function search(token: string, q: string, cursor: string | null, signal?: AbortSignal): Promise<AnsweredPage> {
  const page = await apiRequest<SearchPage>(searchUrl(q, cursor), { token, signal });
  return { items: page.items ?? [], next_cursor: page.next_cursor ?? null, q };
}

/** Results for `q` (normalised); nothing is sent for an empty query. Earlier results stay while the next arrive. */
export function useSearch(rawQuery: string) {
  const session = useRequiredSession();
  const q = normalizeQuery(rawQuery);
  return useInfiniteQuery({
    queryKey: keys.search(q),
    queryFn: ({ pageParam, signal }) => search(session.accessToken, q, pageParam, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    enabled: q !== '',
    placeholderData: keepPreviousData,
    staleTime: 15_000,
  });
}

/** `value`, once it has stopped changing for `ms`. */
export function useDebouncedValue<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  const update = useMemo(() => debounce((v: T) => setSettled(v), ms), [ms]);
  useEffect(() => {
    update(value);
  }, [update, value]);
  useEffect(() => () => update.cancel(), [update]);
  return settled;
}
