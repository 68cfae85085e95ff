// The "Add member" section (owners, admins): find a person by name as you type (GET /api/users?q=,
// which finds, for non-admins, only people who already share a project with them, by name only),
// or add by exact email address (POST /api/projects/{id}/members with {email, role}: the same
// answer whether or not the address has an account, an unknown one is invited), pick a role, add.
import { useId, useRef, useState, type FormEvent, type KeyboardEvent, type RefObject } from 'react';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { useDebouncedValue } from '@/features/search/api';
import { DEBOUNCE_MS } from '@/features/search/logic';
import { useAddMember, useAddMemberByEmail, useMembers, usePeopleSearch } from '../api';
import { ROLES, ROLE_HINTS, canSearchPeople, roleLabel, type Role } from '../logic';
import type { PublicUser } from '../types';

export function AddMember({ projectId, enabled }: { projectId: string; enabled: boolean }) {
  const mutation = useAddMember(projectId);
  const members = useMembers(projectId, enabled);
  const [person, setPerson] = useState<PublicUser | null>(null);
  const [role, setRole] = useState<Role>('editor');
  const [pickerKey, setPickerKey] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const roleId = useId();
  const pickerRef = useRef<HTMLInputElement>(null);

  function handleSubmit(event: FormEvent) {
    event.preventDefault();
    setNotice(null);
    if (!person) {
      setError('Choose a person from the list first.');
      pickerRef.current?.focus();
      return;
    }
    setError(null);
    mutation.mutate(
      { user: person, role },
      {
        onSuccess: () => {
          setNotice(`Added ${person.name} as ${roleLabel(role).toLowerCase()}.`);
          setPerson(null);
          setPickerKey((k) => k + 1);
          pickerRef.current?.focus();
        },
      },
    );
  }

  const memberIds = new Set((members.data ?? []).map((m) => m.user_id));

  return (
    <section aria-labelledby="add-member-heading" className="rounded-xl border border-zinc-200 bg-white p-5 shadow-sm">
      <h2 id="add-member-heading" className="text-base font-semibold text-zinc-900">
        Add member
      </h2>
      <p className="mt-1 text-sm text-zinc-600">Find people you already work with by name, or add anyone by their email address below.</p>
      <form onSubmit={handleSubmit} noValidate className="mt-4 space-y-4">
        <ErrorSummary error={mutation.error} />
        <PersonPicker
          key={pickerKey}
          inputRef={pickerRef}
          selected={person}
          memberIds={memberIds}
          error={error}
          onType={() => setNotice(null)}
          onSelect={(p) => {
            setPerson(p);
            setError(null);
            setNotice(null);
            mutation.reset();
          }}
        />
        <div className="space-y-1.5">
          <label htmlFor={roleId} className="block text-sm font-medium text-zinc-800">
            Role
          </label>
          <select
            id={roleId}
            value={role}
            onChange={(e) => setRole(e.target.value as Role)}
            aria-describedby={`${roleId}-hint`}
            className="block min-h-10 w-full rounded-md border-0 bg-white py-1.5 pr-8 pl-3 text-sm text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600 sm:w-56"
          >
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {roleLabel(r)}
              </option>
            ))}
          </select>
          <p id={`${roleId}-hint`} className="text-sm text-zinc-600">
            {ROLE_HINTS[role]}.
          </p>
        </div>
        <div className="flex flex-wrap items-center gap-3">
          <Button type="submit" busy={mutation.isPending}>
            {mutation.isPending ? 'Adding…' : 'Add member'}
          </Button>
          <p role="status" className="text-sm text-emerald-800">
            {notice}
          </p>
        </div>
      </form>
      <AddByEmail projectId={projectId} role={role} />
    </section>
  );
}

/** "Or add by email address": the answer is the same for every address, so the notice is too. */
function AddByEmail({ projectId, role }: { projectId: string; role: Role }) {
  const mutation = useAddMemberByEmail(projectId);
  const [email, setEmail] = useState('');
  const [notice, setNotice] = useState<string | null>(null);
  const emailId = useId();

  function handleSubmit(event: FormEvent) {
    event.preventDefault();
    setNotice(null);
    mutation.mutate(
      { email: email.trim(), role },
      {
        onSuccess: (answer) => {
          const role = roleLabel(answer.role).toLowerCase();
          setNotice(`If ${answer.email} has a Trellis account, they are now ${/^[aeiou]/.test(role) ? 'an' : 'a'} ${role}; otherwise we emailed them an invitation to sign up.`);
          setEmail('');
        },
      },
    );
  }

  return (
    <form onSubmit={handleSubmit} noValidate className="mt-6 space-y-3 border-t border-zinc-200 pt-4">
      <ErrorSummary error={mutation.error} />
      <div className="space-y-1.5">
        <label htmlFor={emailId} className="block text-sm font-medium text-zinc-800">
          Or add by email address
        </label>
        <input
          id={emailId}
          type="email"
          autoComplete="off"
          value={email}
          onChange={(e) => {
            setEmail(e.target.value);
            setNotice(null);
          }}
          className="block min-h-10 w-full rounded-md border-0 bg-white px-3 py-1.5 text-sm text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600 sm:w-80"
        />
      </div>
      <div className="flex flex-wrap items-center gap-3">
        <Button type="submit" variant="secondary" busy={mutation.isPending} disabled={email.trim() === ''}>
          Add by email
        </Button>
        <p role="status" className="text-sm text-emerald-800">
          {notice}
        </p>
      </div>
    </form>
  );
}

type PickerProps = {
  inputRef: RefObject<HTMLInputElement | null>;
  selected: PublicUser | null;
  memberIds: Set<string>;
  error: string | null;
  onSelect: (person: PublicUser | null) => void;
  onType: () => void;
};

/**
 * "Find a person": an ARIA 1.2 combobox. Typing searches (debounced), ↓/↑ move through the
 * listbox of people, Enter picks, Escape closes the list. People already in the project are
 * listed but cannot be picked.
 */
function PersonPicker({ inputRef, selected, memberIds, error, onSelect, onType }: PickerProps) {
  const id = useId();
  const listId = `${id}-list`;
  const [text, setText] = useState('');
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const settled = useDebouncedValue(text.trim(), DEBOUNCE_MS);
  const searchable = canSearchPeople(settled) && selected === null;
  const people = usePeopleSearch(settled, searchable);
  const results = searchable ? (people.data?.items ?? []) : [];
  const waiting = canSearchPeople(text) && selected === null && (text.trim() !== settled || people.isFetching);
  const showList = open && results.length > 0;

  function pick(person: PublicUser) {
    if (memberIds.has(person.id)) return;
    onSelect(person);
    setText(person.name);
    setOpen(false);
    setActive(-1);
  }

  function handleKeyDown(event: KeyboardEvent<HTMLInputElement>) {
    switch (event.key) {
      case 'ArrowDown':
        if (results.length === 0) return;
        event.preventDefault();
        setOpen(true);
        setActive((a) => Math.min(a + 1, results.length - 1));
        break;
      case 'ArrowUp':
        if (!showList) return;
        event.preventDefault();
        setActive((a) => Math.max(a - 1, 0));
        break;
      case 'Enter': {
        const person = showList ? results[active] : undefined;
        if (person) {
          event.preventDefault();
          pick(person);
        }
        break;
      }
      case 'Escape':
        if (showList) {
          event.preventDefault();
          setOpen(false);
          setActive(-1);
        }
        break;
    }
  }

  let hint: string;
  if (selected) hint = `${selected.name} is selected. Choose a role and add them.`;
  else if (text.trim() === '') hint = 'Type at least two letters of the name of someone you share a project with.';
  else if (!canSearchPeople(text)) hint = 'Type at least two letters.';
  else if (waiting) hint = 'Searching…';
  else if (people.isError) hint = 'Could not search people. Try again.';
  else if (results.length === 0) hint = `No one found for “${settled}”.`;
  else hint = `${results.length} ${results.length === 1 ? 'person' : 'people'} found. Use the arrow keys to choose.`;

  return (
    <div className="space-y-1.5">
      <label htmlFor={id} className="block text-sm font-medium text-zinc-800">
        Find a person
      </label>
      <div className="relative">
        <input
          ref={inputRef}
          id={id}
          type="text"
          role="combobox"
          aria-autocomplete="list"
          aria-expanded={showList}
          aria-controls={listId}
          aria-activedescendant={showList && active >= 0 ? `${listId}-${active}` : undefined}
          aria-invalid={error ? true : undefined}
          aria-describedby={`${id}-hint${error ? ` ${id}-error` : ''}`}
          autoComplete="off"
          spellCheck={false}
          placeholder="Name"
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            onType();
            setOpen(true);
            setActive(-1);
            if (selected) onSelect(null);
          }}
          onFocus={() => setOpen(true)}
          onBlur={() => setOpen(false)}
          onKeyDown={handleKeyDown}
          className="block w-full rounded-md border-0 bg-white px-3 py-2 text-sm text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset placeholder:text-zinc-500 focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600 aria-invalid:ring-red-500"
        />
        <ul
          id={listId}
          role="listbox"
          aria-label="People"
          hidden={!showList}
          className="absolute z-10 mt-1 max-h-64 w-full overflow-y-auto rounded-md bg-white py-1 shadow-lg ring-1 ring-zinc-200"
        >
          {results.map((person, i) => {
            const member = memberIds.has(person.id);
            return (
              <li
                key={person.id}
                id={`${listId}-${i}`}
                role="option"
                aria-selected={i === active}
                aria-disabled={member || undefined}
                // Keep the focus in the field while picking with the mouse.
                onMouseDown={(e) => e.preventDefault()}
                onClick={() => pick(person)}
                onMouseEnter={() => setActive(i)}
                className={`flex cursor-pointer items-center justify-between gap-3 px-3 py-2 text-sm ${
                  i === active ? 'bg-indigo-50 text-indigo-900' : 'text-zinc-900'
                } ${member ? 'cursor-default opacity-60' : ''}`}
              >
                <span className="min-w-0">
                  <span className="block truncate font-medium">{person.name}</span>
                  {person.email && <span className="block truncate text-xs text-zinc-600">{person.email}</span>}
                </span>
                {member && <span className="shrink-0 text-xs text-zinc-600">Already a member</span>}
              </li>
            );
          })}
        </ul>
      </div>
      {error && (
        <p id={`${id}-error`} className="text-sm text-red-700">
          {error}
        </p>
      )}
      <p id={`${id}-hint`} role="status" className="text-sm text-zinc-600">
        {hint}
      </p>
    </div>
  );
}
