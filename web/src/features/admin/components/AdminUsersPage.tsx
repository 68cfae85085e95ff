// Users (admins): search by name or email, filter by role and status, change a person's role or
// status (with a confirmation before demoting an admin or deactivating, and always the admin's
// own password: the server needs it with every such change), paged with "Load more".
import { useEffect, useId, useState } from 'react';
import { navigate, setSearchParams, useSearchParams } from '@/app/router';
import { usePage } from '@/app/usePage';
import { Button } from '@/components/ui/Button';
import { TextField } from '@/components/ui/Field';
import { ErrorSummary } from '@/components/ErrorSummary';
import { errorMessage } from '@/lib/api';
import { useRequiredSession, useSession } from '@/features/auth/session';
import { LastAdminError, useAdminUsers, useUpdateUser } from '../api';
import { useDebounced } from '../hooks/useDebounced';
import { confirmationFor, filtersFromSearch, ROLES, STATUSES, usableQuery, type Change } from '../lib/urls';
import type { AdminUser, Role, UserStatus } from '../types';
import { AdminNav } from './AdminNav';
import { ConfirmDialog } from '@/components/ui/ConfirmDialog';
import { Dialog } from '@/components/ui/Dialog';
import { PasswordConfirmForm } from '@/features/account/components/PasswordConfirmForm';

const FILTERS = ['q', 'role', 'status'] as const;
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const SELECT =
  'block rounded-md border-0 bg-white py-1.5 pr-8 pl-2.5 text-sm text-zinc-900 shadow-sm ring-1 ring-inset ring-zinc-300 focus-visible:outline-2 focus-visible:outline-indigo-600 disabled:opacity-60';

function formatDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat.format(date);
}

export function AdminUsersPage() {
  const headingRef = usePage('Users');
  const search = useSearchParams();
  const filters = filtersFromSearch(search, FILTERS);
  const [text, setText] = useState(filters.q);
  const debounced = useDebounced(text, 300);
  const [notice, setNotice] = useState('');

  // Typing updates the URL (and so the query) once the person pauses.
  useEffect(() => {
    if (debounced !== (new URLSearchParams(window.location.search).get('q') ?? '')) {
      setSearchParams({ ...filtersFromSearch(new URLSearchParams(window.location.search), FILTERS), q: debounced });
    }
  }, [debounced]);

  const setFilter = (name: 'role' | 'status', value: string) => setSearchParams({ ...filters, [name]: value });
  const tooShort = text.trim() !== '' && usableQuery(text) === '';

  return (
    <>
      <AdminNav />
      <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
        Users
      </h1>
      <form role="search" aria-label="Filter users" className="mt-5 grid grid-cols-1 gap-3 sm:grid-cols-[minmax(0,1fr)_10rem_10rem]" onSubmit={(e) => e.preventDefault()}>
        <TextField
          label="Search users"
          type="search"
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder="Name or email"
          autoComplete="off"
          hint={tooShort ? 'Type a word of at least 2 letters or digits.' : undefined}
        />
        <FilterSelect label="Role" value={filters.role} onChange={(v) => setFilter('role', v)} options={[['', 'All roles'], ...ROLES.map((r) => [r, r] as [string, string])]} />
        <FilterSelect
          label="Status"
          value={filters.status}
          onChange={(v) => setFilter('status', v)}
          options={[['', 'All statuses'], ['active', 'active'], ['inactive', 'inactive'], ['deleted', 'deleted']]}
        />
      </form>
      <p role="status" className="sr-only">
        {notice}
      </p>
      {notice && (
        <p aria-hidden="true" className="mt-4 rounded-md border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">
          {notice}
        </p>
      )}
      <UsersTable filters={{ ...filters, q: usableQuery(filters.q) }} onChanged={setNotice} />
    </>
  );
}

function FilterSelect({ label, value, onChange, options }: { label: string; value: string; onChange: (value: string) => void; options: [string, string][] }) {
  const id = useId();
  return (
    <div className="space-y-1.5">
      <label htmlFor={id} className="block text-sm font-medium text-zinc-800">
        {label}
      </label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)} className={`${SELECT} w-full py-2`}>
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
    </div>
  );
}

type Question = { title: string; message: string; confirmLabel: string; onConfirm: () => void; onCancel: () => void };

function UsersTable({ filters, onChanged }: { filters: { q: string; role: string; status: string }; onChanged: (message: string) => void }) {
  const query = useAdminUsers(filters);
  const [question, setQuestion] = useState<Question | null>(null);

  if (query.isPending) {
    return (
      <p role="status" className="py-10 text-center text-sm text-zinc-600">
        Loading users…
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
  const users = query.data.pages.flatMap((p) => p.items);
  const filtered = filters.q || filters.role || filters.status;
  if (users.length === 0) {
    return (
      <div className="mt-5 rounded-xl border border-dashed border-zinc-300 bg-white px-6 py-12 text-center">
        <p className="text-sm font-medium text-zinc-900">{filtered ? 'No users match these filters' : 'No users yet'}</p>
        {filtered && <p className="mt-1 text-sm text-zinc-600">Try another search, role or status.</p>}
      </div>
    );
  }
  return (
    <div className="mt-5 space-y-4">
      <div className="relative overflow-x-auto rounded-xl border border-zinc-200 bg-white shadow-sm" aria-busy={query.isFetching || undefined}>
        <table aria-label="Users" className="w-full min-w-[56rem] text-left text-sm">
          <thead className="border-b border-zinc-200 bg-zinc-50 text-xs font-medium text-zinc-600">
            <tr>
              <th scope="col" className="px-4 py-2.5">Name</th>
              <th scope="col" className="px-4 py-2.5">Email</th>
              <th scope="col" className="px-4 py-2.5">Role</th>
              <th scope="col" className="px-4 py-2.5">Status</th>
              <th scope="col" className="px-4 py-2.5">2FA</th>
              <th scope="col" className="px-4 py-2.5">Verified</th>
              <th scope="col" className="px-4 py-2.5">Created</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-zinc-200">
            {users.map((user) => (
              <UserRow key={user.id} user={user} onChanged={onChanged} ask={setQuestion} />
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
      <ConfirmDialog
        open={question !== null}
        title={question?.title ?? ''}
        confirmLabel={question?.confirmLabel ?? ''}
        onClose={() => {
          question?.onCancel();
          setQuestion(null);
        }}
        onConfirm={() => {
          question?.onConfirm();
          setQuestion(null);
        }}
      >
        <p>{question?.message}</p>
      </ConfirmDialog>
    </div>
  );
}

function describe(change: Change): string {
  return change.role ? `role to ${change.role}` : `status to ${change.status}`;
}

function UserRow({ user, onChanged, ask }: { user: AdminUser; onChanged: (message: string) => void; ask: (question: Question) => void }) {
  const session = useRequiredSession();
  const { signOut, setNotice } = useSession();
  const mutation = useUpdateUser();
  const [pending, setPending] = useState<Change | null>(null);
  // The change waiting for the admin's password (step-up), if any.
  const [proof, setProof] = useState<Change | null>(null);
  const isSelf = user.id === session.user.id;
  const deleted = user.status === 'deleted';

  function send(change: Change) {
    setPending(change);
    setProof(change);
  }

  async function sendWith(change: Change, password: string) {
    const updated = await mutation.mutateAsync({ user, change, password });
    onChanged(`Changed ${updated.name}'s ${describe(change)}.`);
    if (isSelf) {
      setNotice('Your own role or status changed, which ended your sessions. Sign in again.');
      signOut();
      navigate('/login');
    }
  }

  function closeProof() {
    setProof(null);
    setPending(null);
  }

  function request(change: Change) {
    mutation.reset();
    if ((change.role ?? user.role) === user.role && (change.status ?? user.status) === user.status) return;
    const message = confirmationFor(user, change, isSelf);
    if (message) {
      setPending(change);
      const demoting = change.role !== undefined;
      ask({
        title: demoting ? 'Remove administrator role?' : 'Deactivate this user?',
        message,
        confirmLabel: demoting ? `Change role to ${change.role}` : 'Deactivate',
        onConfirm: () => send(change),
        onCancel: () => setPending(null),
      });
    } else {
      send(change);
    }
  }

  const role = pending?.role ?? user.role;
  const status = pending?.status ?? user.status;
  const busy = mutation.isPending;

  return (
    <>
      <tr className="align-middle">
        <th scope="row" className="px-4 py-2.5 font-medium text-zinc-900">
          <span className="block max-w-56 truncate" title={user.name}>
            {user.name}
          </span>
          {isSelf && <span className="text-xs font-normal text-zinc-600">(you)</span>}
        </th>
        <td className="px-4 py-2.5 text-zinc-700">
          <span className="block max-w-64 truncate" title={user.email}>
            {user.email}
          </span>
        </td>
        <td className="px-4 py-2.5">
          <select
            aria-label={`Role for ${user.name}`}
            value={role}
            disabled={busy || deleted}
            onChange={(e) => request({ role: e.target.value as Role })}
            className={`${SELECT} w-32`}
          >
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </td>
        <td className="px-4 py-2.5">
          <select
            aria-label={`Status for ${user.name}`}
            value={status}
            disabled={busy || deleted}
            onChange={(e) => request({ status: e.target.value as UserStatus })}
            className={`${SELECT} w-32`}
          >
            {(deleted ? (['deleted'] as UserStatus[]) : STATUSES).map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </td>
        <td className="px-4 py-2.5 text-zinc-700">{user.mfa_enabled ? 'On' : 'Off'}</td>
        <td className="px-4 py-2.5 text-zinc-700">{user.email_verified ? 'Yes' : 'No'}</td>
        <td className="px-4 py-2.5 whitespace-nowrap text-zinc-700">
          <time dateTime={user.created_at}>{formatDate(user.created_at)}</time>
        </td>
      </tr>
      <Dialog open={proof !== null} onClose={closeProof} title={`Change ${user.name}'s ${proof ? describe(proof) : ''}?`}>
        {proof && (
          <PasswordConfirmForm
            refusedDetail={`Wrong password: ${user.name} was not changed.`}
            confirmLabel="Confirm change"
            confirmVariant="primary"
            action={(password) => sendWith(proof, password)}
            onDone={closeProof}
            onCancel={() => {
              mutation.reset();
              closeProof();
            }}
          >
            Enter your own password to confirm this change. Trellis asks for it with every change of a role or status,
            so that a stolen session cannot make one.
          </PasswordConfirmForm>
        )}
      </Dialog>
      {mutation.isError && !proof && (
        <tr>
          <td colSpan={7} className="px-4 pb-3">
            <div role="alert" className="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
              Could not change {user.name}: {mutation.error instanceof LastAdminError ? mutation.error.message : errorMessage(mutation.error)}
            </div>
          </td>
        </tr>
      )}
    </>
  );
}
