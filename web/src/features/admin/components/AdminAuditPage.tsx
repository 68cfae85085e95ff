// The audit log (admins): filters by action, actor and time (kept in the URL), the hash-chained
// entries newest first with "Load more", actor names, expandable details, and "Verify chain".
import { useState, type FormEvent } from 'react';
import { setSearchParams, useSearchParams } from '@/app/router';
import { usePage } from '@/app/usePage';
import { Button } from '@/components/ui/Button';
import { TextField } from '@/components/ui/Field';
import { ErrorSummary } from '@/components/ErrorSummary';
import { useAuditLog, useUserNames } from '../api';
import { AUDIT_FILTERS, detailsPreview, filtersFromForm, formFromFilters, KNOWN_ACTIONS, type AuditForm, type AuditFormErrors } from '../lib/auditForm';
import { filtersFromSearch, isUuid, shorten, type AuditFilters } from '../lib/urls';
import type { AuditEntry } from '../types';
import { AdminNav } from './AdminNav';
import { VerifyChain } from './VerifyChain';

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

function formatTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : timeFormat.format(date);
}

export function AdminAuditPage() {
  const headingRef = usePage('Audit log');
  const search = useSearchParams();
  const raw = filtersFromSearch(search, AUDIT_FILTERS);
  // A hand-edited URL with a malformed actor id is ignored rather than sent (and refused).
  const filters: AuditFilters = { ...raw, actor_id: isUuid(raw.actor_id) ? raw.actor_id : '' };
  const apply = (next: AuditFilters) => setSearchParams(next);

  return (
    <>
      <AdminNav />
      <div className="flex flex-wrap items-start justify-between gap-3">
        <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
          Audit log
        </h1>
        <VerifyChain />
      </div>
      {/* The form starts afresh whenever the URL's filters change (e.g. after clicking an actor). */}
      <FilterForm key={search.toString()} filters={filters} onApply={apply} />
      <AuditTable filters={filters} onActor={(actor_id) => apply({ ...filters, actor_id })} />
    </>
  );
}

function FilterForm({ filters, onApply }: { filters: AuditFilters; onApply: (filters: AuditFilters) => void }) {
  const [form, setForm] = useState<AuditForm>(() => formFromFilters(filters));
  const [errors, setErrors] = useState<AuditFormErrors>({});
  const active = Object.values(filters).some(Boolean);
  const set = (name: keyof AuditForm) => (e: { target: { value: string } }) => setForm((f) => ({ ...f, [name]: e.target.value }));

  function submit(e: FormEvent) {
    e.preventDefault();
    const result = filtersFromForm(form);
    if ('errors' in result) {
      setErrors(result.errors);
      return;
    }
    setErrors({});
    onApply(result.filters);
  }

  return (
    <form role="search" aria-label="Filter the audit log" noValidate onSubmit={submit} className="mt-5 rounded-xl border border-zinc-200 bg-white p-4 shadow-sm">
      <div className="grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-4">
        <TextField label="Action" list="audit-actions" value={form.action} onChange={set('action')} placeholder="e.g. project.created" autoComplete="off" spellCheck={false} error={errors.action} />
        <TextField label="Actor" value={form.actor} onChange={set('actor')} placeholder="User id" autoComplete="off" spellCheck={false} error={errors.actor} />
        <TextField label="From" type="datetime-local" value={form.from} onChange={set('from')} error={errors.from} />
        <TextField label="To" type="datetime-local" value={form.to} onChange={set('to')} error={errors.to} />
      </div>
      <datalist id="audit-actions">
        {KNOWN_ACTIONS.map((a) => (
          <option key={a} value={a} />
        ))}
      </datalist>
      <div className="mt-3 flex flex-wrap items-center gap-2">
        <Button type="submit">Apply filters</Button>
        {active && (
          <Button variant="ghost" onClick={() => onApply({ action: '', actor_id: '', from: '', to: '' })}>
            Clear filters
          </Button>
        )}
        <p className="text-xs text-zinc-600">Times are in your local time zone; “To” includes its whole minute.</p>
      </div>
    </form>
  );
}

function AuditTable({ filters, onActor }: { filters: AuditFilters; onActor: (id: string) => void }) {
  const query = useAuditLog(filters);
  const entries = query.data?.pages.flatMap((p) => p.items) ?? [];
  const actorIds = [...new Set(entries.map((e) => e.actor_id).filter((id): id is string => Boolean(id)))];
  const names = useUserNames(actorIds);

  if (query.isPending) {
    return (
      <p role="status" className="py-10 text-center text-sm text-zinc-600">
        Loading the audit log…
      </p>
    );
  }
  if (query.isError && !query.data) {
    return (
      <div className="mt-5 space-y-3">
        <ErrorSummary error={query.error} />
        <Button variant="secondary" onClick={() => void query.refetch()}>
          Try again
        </Button>
      </div>
    );
  }
  if (entries.length === 0) {
    const filtered = Object.values(filters).some(Boolean);
    return (
      <div className="mt-5 rounded-xl border border-dashed border-zinc-300 bg-white px-6 py-12 text-center">
        <p className="text-sm font-medium text-zinc-900">{filtered ? 'No entries match these filters' : 'The audit log is empty'}</p>
        {filtered && <p className="mt-1 text-sm text-zinc-600">Try another action, actor or time range.</p>}
      </div>
    );
  }

  return (
    <div className="mt-5 space-y-4">
      <p className="text-sm text-zinc-600" aria-live="polite">
        {entries.length} {entries.length === 1 ? 'entry' : 'entries'} shown{query.hasNextPage ? ', more available' : ''}.
      </p>
      <div className="relative overflow-x-auto rounded-xl border border-zinc-200 bg-white shadow-sm" aria-busy={query.isFetching || undefined}>
        <table aria-label="Audit log" className="w-full min-w-[60rem] text-left text-sm">
          <thead className="border-b border-zinc-200 bg-zinc-50 text-xs font-medium text-zinc-600">
            <tr>
              <th scope="col" className="px-3 py-2.5">#</th>
              <th scope="col" className="px-3 py-2.5">Time</th>
              <th scope="col" className="px-3 py-2.5">Action</th>
              <th scope="col" className="px-3 py-2.5">Actor</th>
              <th scope="col" className="px-3 py-2.5">Target</th>
              <th scope="col" className="px-3 py-2.5">Details</th>
              <th scope="col" className="px-3 py-2.5">Hash</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-zinc-200">
            {entries.map((entry) => (
              <AuditRow key={entry.event_id} entry={entry} actorName={entry.actor_id ? names.get(entry.actor_id) : undefined} onActor={onActor} />
            ))}
          </tbody>
        </table>
      </div>
      {query.hasNextPage && (
        <Button variant="secondary" busy={query.isFetchingNextPage} onClick={() => void query.fetchNextPage()}>
          Load more
        </Button>
      )}
      {query.isError && <ErrorSummary error={query.error} />}
    </div>
  );
}

function AuditRow({ entry, actorName, onActor }: { entry: AuditEntry; actorName?: string; onActor: (id: string) => void }) {
  const actor = entry.actor_id;
  return (
    <tr className="align-top" data-testid="audit-entry" data-seq={entry.seq}>
      <td className="px-3 py-2.5 text-zinc-600 tabular-nums">{entry.seq}</td>
      <td className="px-3 py-2.5 whitespace-nowrap text-zinc-700">
        <time dateTime={entry.occurred_at}>{formatTime(entry.occurred_at)}</time>
      </td>
      <td className="px-3 py-2.5">
        <code className="rounded bg-zinc-100 px-1.5 py-0.5 text-xs text-zinc-800">{entry.action}</code>
      </td>
      <td className="px-3 py-2.5">
        {actor ? (
          <button
            type="button"
            onClick={() => onActor(actor)}
            title={`Show only entries by ${actorName ?? actor}`}
            className="max-w-44 truncate rounded text-left text-indigo-700 underline decoration-indigo-300 underline-offset-2 hover:decoration-indigo-700"
          >
            {actorName ?? <code className="text-xs">{shorten(actor, 13)}</code>}
          </button>
        ) : (
          <span className="text-zinc-600">System</span>
        )}
      </td>
      <td className="px-3 py-2.5">
        <code className="text-xs text-zinc-700" title={entry.aggregate_id}>
          {shorten(entry.aggregate_id, 13)}
        </code>
      </td>
      <td className="px-3 py-2.5">
        <details className="group max-w-md">
          <summary className="cursor-pointer rounded text-xs text-zinc-700 select-none hover:text-zinc-900">
            <span className="sr-only">Details: </span>
            {detailsPreview(entry.data)}
          </summary>
          <pre className="mt-1.5 max-h-64 overflow-auto rounded-md bg-zinc-50 p-2 text-xs break-all whitespace-pre-wrap text-zinc-800 ring-1 ring-zinc-200">
            {JSON.stringify(entry.data, null, 2)}
          </pre>
        </details>
      </td>
      <td className="px-3 py-2.5">
        <code className="text-xs text-zinc-600" title={`SHA-256 ${entry.hash} (previous ${entry.prev_hash})`}>
          {shorten(entry.hash, 12)}
        </code>
      </td>
    </tr>
  );
}
