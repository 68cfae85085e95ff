// The full search page (`/search?q=`): the query lives in the URL (typing updates it after a
// short pause), results are grouped by kind, and "Load more results" follows the API's cursor.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { setSearchParams, useSearchParams } from '@/app/router';
import { usePage } from '@/app/usePage';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { EmptyState } from '@/components/ui/EmptyState';
import { useDebouncedValue, useSearch } from '../api';
import { DEBOUNCE_MS, MAX_QUERY, groupResults, normalizeQuery, statusText } from '../logic';
import { SearchResults } from './SearchResults';

export function SearchPage() {
  const params = useSearchParams();
  const urlQuery = normalizeQuery(params.get('q') ?? '');
  const headingRef = usePage(urlQuery ? `Search: ${urlQuery}` : 'Search');
  const fieldRef = useRef<HTMLInputElement>(null);
  const listRef = useRef<HTMLUListElement>(null);
  const [input, setInput] = useState(urlQuery);
  const typed = normalizeQuery(input);
  const settled = normalizeQuery(useDebouncedValue(input, DEBOUNCE_MS));

  // Typing (once it pauses) writes the query into the URL, without a history entry per letter.
  useEffect(() => {
    setSearchParams({ q: settled || undefined });
  }, [settled]);
  // A query arriving from elsewhere (the search dialog's "See all results", back/forward) shows in the field.
  useEffect(() => {
    setInput((current) => (normalizeQuery(current) === urlQuery ? current : urlQuery));
  }, [urlQuery]);

  const search = useSearch(urlQuery);
  const answered = urlQuery !== '' ? search.data : undefined;
  const answeredQuery = answered?.pages[0]?.q ?? '';
  const results = answered ? answered.pages.flatMap((p) => p.items) : [];
  const groups = groupResults(results);
  const current = answered !== undefined && answeredQuery === urlQuery && !search.isPlaceholderData;
  const searching = urlQuery !== '' && !current && !search.isError;

  function handleSubmit(event: FormEvent) {
    event.preventDefault();
    setSearchParams({ q: typed || undefined });
  }

  return (
    <div className="mx-auto max-w-3xl">
      <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
        Search
      </h1>
      <form role="search" onSubmit={handleSubmit} className="mt-4">
        <label htmlFor="search-page-field" className="block text-sm font-medium text-zinc-800">
          Search
        </label>
        <div className="mt-1.5">
          <input
            ref={fieldRef}
            id="search-page-field"
            type="search"
            name="q"
            autoComplete="off"
            spellCheck={false}
            enterKeyHint="search"
            maxLength={MAX_QUERY}
            placeholder="Projects, tasks and comments"
            value={input}
            onChange={(e) => setInput(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'ArrowDown' && listRef.current?.querySelector('a')) {
                e.preventDefault();
                listRef.current.querySelector('a')?.focus();
              }
            }}
            className="block w-full min-w-0 rounded-md border-0 bg-white px-3 py-2 text-sm text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset placeholder:text-zinc-500 focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600"
          />
        </div>
      </form>

      <p role="status" className="mt-4 min-h-5 text-sm text-zinc-600">
        {statusText({
          query: urlQuery,
          searching: searching || search.isFetchingNextPage || typed !== urlQuery,
          error: search.isError,
          count: results.length,
          more: search.hasNextPage,
        })}
      </p>

      <div className="mt-3">
        {urlQuery === '' ? (
          <EmptyState title="Search your projects">
            Find projects, tasks and comments by the words in them. Every word must occur; the last one may be the beginning of a word.
          </EmptyState>
        ) : search.isError ? (
          <div className="space-y-3">
            <ErrorSummary error={search.error} />
            <Button variant="secondary" onClick={() => void search.refetch()}>
              Try again
            </Button>
          </div>
        ) : groups.length > 0 ? (
          <div className="space-y-4">
            <SearchResults groups={groups} query={answeredQuery} headingLevel={2} fieldRef={fieldRef} listRef={listRef} stale={!current} />
            {search.hasNextPage && current && (
              <Button variant="secondary" busy={search.isFetchingNextPage} onClick={() => void search.fetchNextPage()}>
                Load more results
              </Button>
            )}
          </div>
        ) : searching ? (
          <p className="flex items-center gap-2 py-6 text-sm text-zinc-600">
            <span aria-hidden="true" className="size-4 animate-spin rounded-full border-2 border-current border-r-transparent" />
            Searching…
          </p>
        ) : (
          <EmptyState title={`No results for “${urlQuery}”`}>Try other words, or fewer of them.</EmptyState>
        )}
      </div>
    </div>
  );
}
