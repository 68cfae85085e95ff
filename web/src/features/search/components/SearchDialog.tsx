// The search dialog opened from the header or by shortcut ("/", Ctrl/⌘+K): search-as-you-type
// over projects, tasks and comments (GET /api/search, debounced), results grouped by kind.
// ↓ from the field enters the results, ↑/↓ move, Enter opens, Escape closes; opening a result
// closes the dialog first, then navigates (so the new page can take focus).
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent, type MouseEvent } from 'react';
import { Dialog } from '@/components/ui/Dialog';
import { Alert } from '@/components/ui/Alert';
import { Link, navigate } from '@/app/router';
import { errorMessage } from '@/lib/api';
import { useDebouncedValue, useSearch } from '../api';
import { DEBOUNCE_MS, MAX_QUERY, groupResults, moveFocus, normalizeQuery, resultUrl, searchPageUrl, statusText } from '../logic';
import { focusResult, SearchResults } from './SearchResults';

export function SearchDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  return (
    <Dialog open={open} onClose={onClose} title="Search" hideTitle>
      <SearchPanel onClose={onClose} />
    </Dialog>
  );
}

/** Whether a click should be handled in the app (a plain left click), not by the browser. */
function isPlainClick(e: MouseEvent): boolean {
  return e.button === 0 && !e.metaKey && !e.ctrlKey && !e.shiftKey && !e.altKey;
}

function SearchPanel({ onClose }: { onClose: () => void }) {
  const fieldRef = useRef<HTMLInputElement>(null);
  const listRef = useRef<HTMLUListElement>(null);
  const [input, setInput] = useState('');
  const query = normalizeQuery(input);
  const debounced = normalizeQuery(useDebouncedValue(input, DEBOUNCE_MS));
  const search = useSearch(debounced);

  // The dialog opens after this panel mounts: focus the field once it is shown.
  useEffect(() => {
    const frame = requestAnimationFrame(() => fieldRef.current?.focus());
    return () => cancelAnimationFrame(frame);
  }, []);

  /**
   * Closes the dialog, then goes to `to` (after the dialog gave focus back, so the new page can
   * take it). `navigate` ignores a change of the query string alone, hence `replace` then.
   */
  function go(to: string) {
    onClose();
    const samePath = to.split('?')[0] === window.location.pathname;
    setTimeout(() => navigate(to, samePath ? { replace: true } : {}), 0);
  }

  function follow(event: MouseEvent<HTMLAnchorElement>, to: string) {
    if (!isPlainClick(event)) return;
    event.preventDefault();
    go(to);
  }

  const answered = query !== '' && search.data !== undefined ? search.data : undefined;
  const answeredQuery = answered?.pages[0]?.q ?? '';
  const results = answered ? answered.pages.flatMap((p) => p.items) : [];
  const groups = groupResults(results);
  const current = answered !== undefined && answeredQuery === query && !search.isPlaceholderData;
  const searching = query !== '' && (!current || search.isFetching) && !search.isError;
  const more = answered?.pages[answered.pages.length - 1]?.next_cursor != null;

  function handleSubmit(event: FormEvent) {
    event.preventDefault();
    if (query === '') return;
    const first = current ? groups[0]?.items[0] : undefined;
    go(first ? resultUrl(first) : searchPageUrl(query));
  }

  function handleFieldKeyDown(event: KeyboardEvent<HTMLInputElement>) {
    // A search field would spend the first Escape on clearing itself: close at once instead.
    if (event.key === 'Escape') {
      event.preventDefault();
      onClose();
      return;
    }
    if (event.key !== 'ArrowDown') return;
    const next = moveFocus(-1, event.key, results.length);
    if (next !== null && next >= 0 && focusResult(listRef.current, next)) event.preventDefault();
  }

  return (
    <div className="flex min-h-0 flex-1 flex-col">
      <form role="search" onSubmit={handleSubmit} className="flex items-center gap-2 border-b border-zinc-200 px-3 py-3 sm:px-4">
        <svg aria-hidden="true" viewBox="0 0 20 20" className="size-5 shrink-0 fill-current text-zinc-500">
          <path d="M8.5 3a5.5 5.5 0 0 1 4.38 8.82l3.65 3.65-1.06 1.06-3.65-3.65A5.5 5.5 0 1 1 8.5 3Zm0 1.5a4 4 0 1 0 0 8 4 4 0 0 0 0-8Z" />
        </svg>
        <label htmlFor="search-dialog-field" className="sr-only">
          Search
        </label>
        <input
          ref={fieldRef}
          id="search-dialog-field"
          type="search"
          autoFocus
          autoComplete="off"
          spellCheck={false}
          enterKeyHint="search"
          maxLength={MAX_QUERY}
          placeholder="Projects, tasks, comments"
          value={input}
          onChange={(e) => setInput(e.target.value)}
          onKeyDown={handleFieldKeyDown}
          aria-describedby="search-dialog-help"
          className="min-w-0 flex-1 rounded-md border-0 bg-transparent px-1 py-1.5 text-base text-zinc-900 placeholder:text-zinc-500 focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600"
        />
        <button
          type="button"
          onClick={onClose}
          className="shrink-0 rounded-md px-2 py-1.5 text-sm text-zinc-700 hover:bg-zinc-100"
        >
          Close
        </button>
      </form>
      <p id="search-dialog-help" className="sr-only">
        Results appear as you type. Use the down arrow to move into them, Enter to open one, Escape to close.
      </p>

      <p role="status" className="sr-only">
        {statusText({ query: debounced, searching: searching || query !== debounced, error: search.isError, count: results.length, more })}
      </p>

      <div className="max-h-[min(60dvh,32rem)] min-h-24 overflow-y-auto px-3 py-3 sm:px-4">
        {query === '' ? (
          <div className="px-1 py-6 text-center text-sm text-zinc-600">
            <p>Type to search projects, tasks and comments.</p>
            <p className="mt-2 hidden text-xs text-zinc-500 sm:block">
              <kbd className="rounded border border-zinc-300 px-1">↑</kbd> <kbd className="rounded border border-zinc-300 px-1">↓</kbd> to
              move, <kbd className="rounded border border-zinc-300 px-1">Enter</kbd> to open,{' '}
              <kbd className="rounded border border-zinc-300 px-1">Esc</kbd> to close
            </p>
          </div>
        ) : search.isError ? (
          <Alert tone="error" title="Search failed">
            <p>{errorMessage(search.error)}</p>
            <button type="button" onClick={() => void search.refetch()} className="mt-2 rounded font-medium underline">
              Try again
            </button>
          </Alert>
        ) : groups.length > 0 ? (
          <SearchResults
            groups={groups}
            query={answeredQuery}
            headingLevel={3}
            fieldRef={fieldRef}
            listRef={listRef}
            stale={!current}
            compact
            onChoose={(result, event) => follow(event, resultUrl(result))}
          />
        ) : searching || !current ? (
          <p className="flex items-center justify-center gap-2 py-6 text-sm text-zinc-600">
            <span aria-hidden="true" className="size-4 animate-spin rounded-full border-2 border-current border-r-transparent" />
            Searching…
          </p>
        ) : (
          <div className="px-1 py-6 text-center text-sm text-zinc-600">
            <p className="font-medium text-zinc-900">No results for “{query}”</p>
            <p className="mt-1">Try other words, or fewer of them. The last word may be the beginning of a word.</p>
          </div>
        )}
      </div>

      {query !== '' && (
        <div className="flex items-center justify-between gap-3 border-t border-zinc-200 px-4 py-2.5 text-sm">
          <span className="inline-flex items-center gap-2 text-zinc-600" aria-hidden="true">
            {searching || query !== debounced ? (
              <>
                <span className="size-3.5 animate-spin rounded-full border-2 border-current border-r-transparent" />
                Searching…
              </>
            ) : current && results.length > 0 ? (
              `${results.length}${more ? '+' : ''} result${results.length === 1 && !more ? '' : 's'}`
            ) : (
              ''
            )}
          </span>
          <Link
            to={searchPageUrl(query)}
            onClick={(e) => follow(e, searchPageUrl(query))}
            className="rounded font-medium text-indigo-700 hover:text-indigo-900"
          >
            See all results
          </Link>
        </div>
      )}
    </div>
  );
}
