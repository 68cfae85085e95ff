// The search results, grouped by kind under headings, each a link whose accessible name starts
// with the result's title; shared by the search dialog and the search page. Arrow keys move
// between the links (and back up to the search field), Home/End jump to the ends.
import { useId, type KeyboardEvent, type MouseEvent, type RefObject } from 'react';
import { Link } from '@/app/router';
import { KIND_LABELS, flattenGroups, moveFocus, resultUrl, type ResultGroup } from '../logic';
import type { SearchResult } from '../types';
import { Highlight } from './Highlight';

type Props = {
  groups: ResultGroup[];
  /** The query that found these results (for highlighting). */
  query: string;
  /** 3 in the dialog (under its h2 title), 2 on the page (under its h1). */
  headingLevel: 2 | 3;
  /** Called when a result link is clicked (or Enter pressed on it); may prevent the navigation. */
  onChoose?: (result: SearchResult, event: MouseEvent<HTMLAnchorElement>) => void;
  /** The field to return to from the first result. */
  fieldRef?: RefObject<HTMLInputElement | null>;
  /** The list element (see `focusResult`). */
  listRef: RefObject<HTMLUListElement | null>;
  /** Dimmed while newer results are on their way. */
  stale?: boolean;
  compact?: boolean;
};

/** Focuses the `index`-th result link inside `list`; false when there is none. */
export function focusResult(list: HTMLElement | null, index: number): boolean {
  const link = list?.querySelectorAll<HTMLAnchorElement>('a[data-testid="search-result"]')[index];
  link?.focus();
  return link !== undefined;
}

export function SearchResults({ groups, query, headingLevel, onChoose, fieldRef, listRef, stale = false, compact = false }: Props) {
  const baseId = useId();
  const flat = flattenGroups(groups);
  const Heading = headingLevel === 2 ? 'h2' : 'h3';

  function handleKeyDown(event: KeyboardEvent<HTMLAnchorElement>, index: number) {
    // Typing on a result goes on in the search field.
    if (event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey && event.key !== ' ' && fieldRef?.current) {
      fieldRef.current.focus();
      return;
    }
    const next = moveFocus(index, event.key, flat.length);
    if (next === null) return;
    event.preventDefault();
    if (next === -1) fieldRef?.current?.focus();
    else focusResult(listRef.current, next);
  }

  let index = -1;
  return (
    <ul ref={listRef} aria-label="Search results" aria-busy={stale || undefined} className={`space-y-4 transition-opacity ${stale ? 'opacity-60' : ''}`}>
      {groups.map((group) => {
        const headingId = `${baseId}-${group.kind}`;
        return (
          <li key={group.kind}>
            <Heading id={headingId} className="px-1 text-xs font-semibold tracking-wide text-zinc-600 uppercase">
              {group.heading}
            </Heading>
            <ul aria-labelledby={headingId} className="mt-1.5 space-y-1">
              {group.items.map((result) => {
                index += 1;
                const i = index;
                return (
                  <li key={`${result.kind}:${result.id}`}>
                    <Link
                      to={resultUrl(result)}
                      onKeyDown={(e) => handleKeyDown(e, i)}
                      onClick={(e) => onChoose?.(result, e)}
                      data-testid="search-result"
                      className={`block rounded-lg px-3 ring-1 ring-zinc-200 hover:bg-zinc-50 hover:ring-zinc-300 focus-visible:bg-indigo-50 focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600 ${compact ? 'py-2' : 'py-3'}`}
                    >
                      <span className="flex items-start justify-between gap-3">
                        <span className="min-w-0 text-sm font-medium break-words text-zinc-900">
                          <Highlight text={result.title} query={query} />
                        </span>
                        <span className="shrink-0 rounded-full bg-zinc-100 px-2 py-0.5 text-xs text-zinc-700">
                          <span className="sr-only">, </span>
                          {KIND_LABELS[result.kind]}
                        </span>
                      </span>
                      {result.snippet.trim() !== '' && (
                        <span className={`mt-0.5 block text-sm break-words text-zinc-600 ${compact ? 'line-clamp-2' : 'line-clamp-3'}`}>
                          <span className="sr-only">: </span>
                          <Highlight text={result.snippet} query={query} />
                        </span>
                      )}
                    </Link>
                  </li>
                );
              })}
            </ul>
          </li>
        );
      })}
    </ul>
  );
}
