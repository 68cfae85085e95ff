// The list view: filters (kept in the URL's query string), sort with a direction toggle, a
// table of tasks paged with the API's cursors (a stack, for "Previous page"), and its empty,
// loading and error states. Rows open the task details over the list.
import { useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { Link, setSearchParams, useSearchParams } from '@/app/router';
import { Button } from '@/components/ui/Button';
import { EmptyState } from '@/components/ui/EmptyState';
import { ErrorSummary } from '@/components/ErrorSummary';
import type { Member } from '@/features/members/types';
import { PRIORITIES, PRIORITY_LABELS, STATUSES, STATUS_LABELS, type Task } from '@/features/tasks/types';
import { useUserNames } from '@/features/users/api';
import { useTaskPage } from '../api';
import {
  apiParams,
  DEFAULT_FILTERS,
  filtersFromSearch,
  filtersToSearch,
  hasFilters,
  SORT_FIELDS,
  SORT_LABELS,
  type ListFilters,
} from '../filters';
import { formatDateTime } from '../format';
import { Assignee, DueDate, Labels, PriorityBadge } from './TaskBits';
import { followLink, taskHref } from './TaskCard';

const CONTROL =
  'block w-full rounded-md border-0 bg-white px-3 py-2 text-sm text-zinc-900 shadow-sm ring-1 ring-inset ring-zinc-300 focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600';

/** The query string for the list with `f` (and `view=list` when the details route shows it). */
export function listSearch(f: ListFilters, keepView: boolean): URLSearchParams {
  const p = filtersToSearch(f);
  if (keepView) p.set('view', 'list');
  return p;
}

function Field({ id, label, children }: { id: string; label: string; children: ReactNode }) {
  return (
    <div className="space-y-1">
      <label htmlFor={id} className="block text-xs font-medium text-zinc-800">
        {label}
      </label>
      {children}
    </div>
  );
}

/** A text filter that writes to the URL 300 ms after the last key press. */
function useDebouncedFilter(value: string, commit: (v: string) => void): [string, (v: string) => void] {
  const [draft, setDraft] = useState(value);
  const last = useRef(value);
  const commitRef = useRef(commit);
  commitRef.current = commit;
  // The URL changed from elsewhere (back button, "Clear filters"): follow it.
  useEffect(() => {
    if (value !== last.current) {
      last.current = value;
      setDraft(value);
    }
  }, [value]);
  useEffect(() => {
    if (draft === last.current) return;
    const t = setTimeout(() => {
      last.current = draft;
      commitRef.current(draft);
    }, 300);
    return () => clearTimeout(t);
  }, [draft]);
  return [draft, setDraft];
}

export function ListView({
  projectId,
  members,
  flashing,
  enabled,
}: {
  projectId: string;
  members: Member[];
  flashing: ReadonlySet<string>;
  enabled: boolean;
}) {
  const params = useSearchParams();
  const keepView = params.get('view') === 'list';
  const filters = useMemo(() => filtersFromSearch(params), [params]);
  const api = useMemo(() => apiParams(filters), [filters]);
  const apiKey = JSON.stringify(api);
  // Cursor stack: the cursors of the pages seen so far (null = first page); reset by new filters.
  const [paging, setPaging] = useState<{ key: string; stack: (string | null)[] }>({ key: apiKey, stack: [null] });
  const stack = paging.key === apiKey ? paging.stack : [null];
  const cursor = stack[stack.length - 1] ?? null;
  const query = useTaskPage(projectId, api, cursor, enabled);

  const update = (f: ListFilters) => setSearchParams(listSearch(f, keepView));
  const set = <K extends keyof ListFilters>(key: K, value: ListFilters[K]) => update({ ...filtersFromSearch(new URLSearchParams(window.location.search)), [key]: value });
  const [q, setQ] = useDebouncedFilter(filters.q, (v) => set('q', v));
  const [label, setLabel] = useDebouncedFilter(filters.label, (v) => set('label', v));

  const items = query.data?.items ?? [];
  const names = useUserNames([...members.map((m) => m.user_id), ...items.flatMap((t) => (t.assignee_id ? [t.assignee_id] : []))]);
  const next = query.data?.next_cursor ?? null;
  const page = stack.length;
  const rowHref = (t: Task) => {
    const s = listSearch(filters, true).toString();
    return `${taskHref(projectId, t.id)}?${s}`;
  };

  const memberOptions = members
    .map((m) => ({ id: m.user_id, name: names[m.user_id] ?? 'Loading…' }))
    .sort((a, b) => a.name.localeCompare(b.name));

  return (
    <div className="space-y-4">
      <form
        role="search"
        aria-label="Filter tasks"
        onSubmit={(e) => e.preventDefault()}
        className="grid grid-cols-2 gap-3 rounded-xl border border-zinc-200 bg-white p-3 shadow-sm sm:grid-cols-3 lg:grid-cols-6"
      >
        <div className="col-span-2 sm:col-span-3 lg:col-span-2">
          <Field id="tf-q" label="Search">
            <input id="tf-q" type="search" className={CONTROL} value={q} placeholder="Title or description" onChange={(e) => setQ(e.target.value)} />
          </Field>
        </div>
        <Field id="tf-status" label="Status">
          <select id="tf-status" className={CONTROL} value={filters.status} onChange={(e) => set('status', e.target.value as ListFilters['status'])}>
            <option value="">Any status</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {STATUS_LABELS[s]}
              </option>
            ))}
          </select>
        </Field>
        <Field id="tf-priority" label="Priority">
          <select id="tf-priority" className={CONTROL} value={filters.priority} onChange={(e) => set('priority', e.target.value as ListFilters['priority'])}>
            <option value="">Any priority</option>
            {PRIORITIES.map((p) => (
              <option key={p} value={p}>
                {PRIORITY_LABELS[p]}
              </option>
            ))}
          </select>
        </Field>
        <Field id="tf-assignee" label="Assignee">
          <select id="tf-assignee" className={CONTROL} value={filters.assignee} onChange={(e) => set('assignee', e.target.value)}>
            <option value="">Anyone</option>
            {memberOptions.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name}
              </option>
            ))}
            {filters.assignee && !memberOptions.some((m) => m.id === filters.assignee) && (
              <option value={filters.assignee}>{names[filters.assignee] ?? 'A former member'}</option>
            )}
          </select>
        </Field>
        <Field id="tf-label" label="Label">
          <input id="tf-label" className={CONTROL} value={label} onChange={(e) => setLabel(e.target.value)} />
        </Field>
        <Field id="tf-due-after" label="Due after">
          <input id="tf-due-after" type="date" className={CONTROL} value={filters.due_after} onChange={(e) => set('due_after', e.target.value)} />
        </Field>
        <Field id="tf-due-before" label="Due before">
          <input id="tf-due-before" type="date" className={CONTROL} value={filters.due_before} onChange={(e) => set('due_before', e.target.value)} />
        </Field>
        <Field id="tf-sort" label="Sort by">
          <select id="tf-sort" className={CONTROL} value={filters.sort} onChange={(e) => set('sort', e.target.value as ListFilters['sort'])}>
            {SORT_FIELDS.map((f) => (
              <option key={f} value={f}>
                {SORT_LABELS[f]}
              </option>
            ))}
          </select>
        </Field>
        <div className="flex items-end gap-2 sm:col-span-2 lg:col-span-2">
          <button
            type="button"
            aria-pressed={filters.desc}
            onClick={() => set('desc', !filters.desc)}
            className="inline-flex min-h-9 items-center gap-1.5 rounded-md px-3 text-sm font-medium text-zinc-800 ring-1 ring-inset ring-zinc-300 hover:bg-zinc-50 aria-pressed:bg-indigo-50 aria-pressed:text-indigo-900 aria-pressed:ring-indigo-200"
          >
            <svg aria-hidden="true" viewBox="0 0 16 16" className={`size-4 fill-current transition-transform ${filters.desc ? 'rotate-180' : ''}`}>
              <path d="M8 2.5 12.5 7l-1.06 1.06-2.69-2.69V13.5h-1.5V5.37L4.56 8.06 3.5 7 8 2.5Z" />
            </svg>
            Descending
          </button>
          {hasFilters(filters) && (
            <button
              type="button"
              onClick={() => update({ ...DEFAULT_FILTERS, sort: filters.sort, desc: filters.desc })}
              className="inline-flex min-h-9 items-center rounded-md px-3 text-sm font-medium text-indigo-700 hover:bg-indigo-50"
            >
              Clear filters
            </button>
          )}
        </div>
      </form>

      {query.isError ? (
        <div className="space-y-3">
          <ErrorSummary error={query.error} />
          <div className="flex gap-2">
            <Button variant="secondary" onClick={() => void query.refetch()}>
              Try again
            </Button>
            {hasFilters(filters) && (
              <Button variant="ghost" onClick={() => update(DEFAULT_FILTERS)}>
                Clear filters
              </Button>
            )}
          </div>
        </div>
      ) : query.isPending ? (
        <div role="status" aria-label="Loading tasks" className="space-y-2 rounded-xl border border-zinc-200 bg-white p-3">
          {[0, 1, 2, 3, 4].map((n) => (
            <div key={n} className="h-8 animate-pulse rounded bg-zinc-100" />
          ))}
          <span className="sr-only">Loading tasks…</span>
        </div>
      ) : items.length === 0 && page === 1 ? (
        hasFilters(filters) ? (
          <EmptyState
            title="No tasks match these filters"
            action={
              <Button variant="secondary" onClick={() => update({ ...DEFAULT_FILTERS, sort: filters.sort, desc: filters.desc })}>
                Clear filters
              </Button>
            }
          >
            Try fewer filters or another search.
          </EmptyState>
        ) : (
          <EmptyState title="No tasks yet" action={<Link to={`/projects/${encodeURIComponent(projectId)}`} className="text-sm font-medium text-indigo-700 underline">Go to the board to add tasks</Link>}>
            Tasks of this project will be listed here.
          </EmptyState>
        )
      ) : (
        <>
          <div className="overflow-x-auto rounded-xl border border-zinc-200 bg-white shadow-sm">
            <table aria-label="Tasks" aria-busy={query.isFetching || undefined} className={`w-full min-w-[56rem] text-left text-sm ${query.isPlaceholderData ? 'opacity-60' : ''}`}>
              <caption className="sr-only">Tasks</caption>
              <thead className="border-b border-zinc-200 bg-zinc-50 text-xs font-medium text-zinc-700">
                <tr>
                  {['Title', 'Status', 'Priority', 'Assignee', 'Due', 'Labels', 'Updated'].map((h) => (
                    <th key={h} scope="col" className="px-3 py-2.5 font-medium">
                      {h}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody className="divide-y divide-zinc-200">
                {items.map((t) => (
                  <tr
                    key={t.id}
                    data-task-id={t.id}
                    data-live-updated={flashing.has(t.id) ? 'true' : undefined}
                    onClick={(e) => {
                      if ((e.target as HTMLElement).closest('a,button')) return;
                      const a = e.currentTarget.querySelector('a');
                      a?.click();
                    }}
                    className={`cursor-pointer align-top hover:bg-zinc-50 ${flashing.has(t.id) ? 'live-flash' : ''}`}
                  >
                    <td className="max-w-80 px-3 py-2.5">
                      <a href={rowHref(t)} onClick={(e) => followLink(e, rowHref(t))} className="font-medium break-words text-zinc-900 hover:underline">
                        {t.title}
                      </a>
                    </td>
                    <td className="px-3 py-2.5 whitespace-nowrap text-zinc-700">{STATUS_LABELS[t.status] ?? t.status}</td>
                    <td className="px-3 py-2.5">
                      <PriorityBadge priority={t.priority} />
                    </td>
                    <td className="max-w-48 px-3 py-2.5 text-zinc-800">
                      <Assignee id={t.assignee_id} name={t.assignee_id ? names[t.assignee_id] : undefined} />
                    </td>
                    <td className="px-3 py-2.5 whitespace-nowrap">{t.due_date ? <DueDate due={t.due_date} status={t.status} /> : <span className="text-zinc-500">—</span>}</td>
                    <td className="px-3 py-2.5">
                      {t.labels.length > 0 ? <Labels labels={t.labels} max={3} /> : <span className="text-zinc-500">—</span>}
                    </td>
                    <td className="px-3 py-2.5 whitespace-nowrap text-zinc-700">
                      <time dateTime={t.updated_at}>{formatDateTime(t.updated_at)}</time>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav aria-label="Pages" className="flex flex-wrap items-center justify-between gap-3">
            <p role="status" className="text-sm text-zinc-600">
              Page {page}
              {items.length > 0 && ` · ${items.length} ${items.length === 1 ? 'task' : 'tasks'} shown`}
            </p>
            <div className="flex gap-2">
              <Button variant="secondary" disabled={page === 1} onClick={() => setPaging({ key: apiKey, stack: stack.slice(0, -1) })}>
                Previous page
              </Button>
              <Button variant="secondary" disabled={!next || query.isPlaceholderData} onClick={() => next && setPaging({ key: apiKey, stack: [...stack, next] })}>
                Next page
              </Button>
            </div>
          </nav>
        </>
      )}
    </div>
  );
}
