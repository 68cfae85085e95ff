// The "Members" section of project settings: who is in the project with which role. Owners and
// admins change roles (select "Role for NAME") and remove people ("Remove NAME", confirmed);
// everyone may leave ("Leave project"). The server keeps at least one owner: its 409 is shown.
import { useMemo, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { navigate } from '@/app/router';
import { Alert } from '@/components/ui/Alert';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { errorMessage } from '@/lib/api';
import { useRequiredSession } from '@/features/auth/session';
import { forgetProject } from '@/features/projects/api';
import { ConfirmDialog } from '@/components/ui/ConfirmDialog';
import type { Project } from '@/features/projects/types';
import { useUsers } from '@/features/users/api';
import { useChangeRole, useLeaveProject, useMembers, useRemoveMember } from '../api';
import { ROLES, ROLE_HINTS, displayName, isSoleOwner, memberActions, roleLabel, sortMembers, type Role } from '../logic';
import type { Member } from '../types';

const DANGER_GHOST = 'inline-flex min-h-10 items-center rounded-md px-3 text-sm font-medium text-red-700 hover:bg-red-50 hover:text-red-800';

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

function formatDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat.format(date);
}

type Props = {
  project: Project;
  canManage: boolean;
  /** Stops the page's queries before leaving (so nothing refetches into a 404). */
  onLeft: () => void;
  enabled: boolean;
};

export function MembersSection({ project, canManage, onLeft, enabled }: Props) {
  const session = useRequiredSession();
  const selfId = session.user.id;
  const queryClient = useQueryClient();
  const members = useMembers(project.id, enabled);
  const list = useMemo(() => members.data ?? [], [members.data]);
  const users = useUsers(list.map((m) => m.user_id));
  const names = new Map(list.map((m, i) => [m.user_id, displayName(users[i]?.data, users[i]?.status ?? 'pending')]));
  const nameOf = (id: string) => names.get(id) ?? 'Unknown person';

  const changeRole = useChangeRole(project.id);
  const remove = useRemoveMember(project.id);
  const leave = useLeaveProject(project.id);
  const [removing, setRemoving] = useState<Member | null>(null);
  const [leaving, setLeaving] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);

  const roleError = changeRole.error
    ? { who: changeRole.variables ? nameOf(changeRole.variables.userId) : 'this member', error: changeRole.error }
    : null;

  function handleRole(member: Member, role: Role) {
    setNotice(null);
    changeRole.mutate(
      { userId: member.user_id, role },
      {
        onSuccess: () =>
          setNotice(
            member.user_id === selfId ? `You are now ${roleLabel(role).toLowerCase()}.` : `${nameOf(member.user_id)} is now ${roleLabel(role).toLowerCase()}.`,
          ),
      },
    );
  }

  function confirmRemove() {
    if (!removing) return;
    const name = nameOf(removing.user_id);
    remove.mutate(removing.user_id, {
      onSuccess: () => {
        setRemoving(null);
        setNotice(`Removed ${name}.`);
      },
    });
  }

  function confirmLeave() {
    leave.mutate(undefined, {
      onSuccess: () => {
        onLeft();
        navigate('/projects');
        forgetProject(queryClient, project.id);
      },
    });
  }

  const sorted = sortMembers(list, nameOf);
  const soleOwner = isSoleOwner(list, selfId);

  return (
    <section aria-labelledby="members-heading" className="rounded-xl border border-zinc-200 bg-white p-5 shadow-sm">
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h2 id="members-heading" className="text-base font-semibold text-zinc-900">
          Members
        </h2>
        {members.data && (
          <p className="text-sm text-zinc-600">
            {list.length} {list.length === 1 ? 'person' : 'people'}
          </p>
        )}
      </div>
      <p className="mt-1 text-sm text-zinc-600">
        {canManage ? 'Owners manage members and may delete the project; editors change tasks; viewers read and comment.' : 'Only owners can change members.'}
      </p>

      <div className="mt-4 space-y-3">
        {roleError && (
          <Alert tone="error" title={`Could not change the role of ${roleError.who}.`}>
            {errorMessage(roleError.error)}
          </Alert>
        )}
        <p role="status" className="text-sm text-emerald-800">
          {notice}
        </p>

        {members.isPending ? (
          <p role="status" className="py-6 text-center text-sm text-zinc-600">
            Loading members…
          </p>
        ) : members.isError ? (
          <div className="space-y-3">
            <ErrorSummary error={members.error} />
            <Button variant="secondary" onClick={() => void members.refetch()}>
              Try again
            </Button>
          </div>
        ) : (
          <ul aria-label="Members" className="divide-y divide-zinc-200 rounded-lg border border-zinc-200">
            {sorted.map((member) => {
              const self = member.user_id === selfId;
              const name = nameOf(member.user_id);
              const actions = memberActions(member, selfId, canManage);
              const pendingRole =
                changeRole.isPending && changeRole.variables?.userId === member.user_id ? changeRole.variables.role : null;
              return (
                <li key={member.user_id} data-testid="member" className="flex flex-col gap-3 px-3 py-3 sm:flex-row sm:items-center sm:px-4">
                  <div className="flex min-w-0 flex-1 items-center gap-3">
                    <span
                      aria-hidden="true"
                      className="grid size-8 shrink-0 place-items-center rounded-full bg-indigo-100 text-sm font-semibold text-indigo-800"
                    >
                      {name.trim().charAt(0).toUpperCase() || '?'}
                    </span>
                    <div className="min-w-0">
                      <p className="truncate text-sm font-medium text-zinc-900" title={name}>
                        {name}
                        {self && <span className="font-normal text-zinc-600"> (you)</span>}
                      </p>
                      <p className="text-xs text-zinc-600">
                        Member since <time dateTime={member.created_at}>{formatDate(member.created_at)}</time>
                      </p>
                      {self && soleOwner && (
                        <p className="mt-0.5 text-xs text-amber-800">You are the only owner: make someone else an owner before you leave.</p>
                      )}
                    </div>
                  </div>
                  <div className="flex flex-wrap items-center gap-2 sm:justify-end">
                    {actions.changeRole ? (
                      <RoleSelect
                        label={`Role for ${name}`}
                        value={(pendingRole ?? member.role) as Role}
                        busy={pendingRole !== null}
                        onChange={(role) => handleRole(member, role)}
                      />
                    ) : (
                      <span className="rounded-full bg-zinc-100 px-2.5 py-1 text-xs font-medium text-zinc-700">{roleLabel(member.role)}</span>
                    )}
                    {actions.remove && (
                      <button
                        type="button"
                        className={DANGER_GHOST}
                        onClick={() => {
                          remove.reset();
                          setRemoving(member);
                        }}
                      >
                        Remove<span className="sr-only"> {name}</span>
                      </button>
                    )}
                    {actions.leave && (
                      <button
                        type="button"
                        className={DANGER_GHOST}
                        onClick={() => {
                          leave.reset();
                          setLeaving(true);
                        }}
                      >
                        Leave project
                      </button>
                    )}
                  </div>
                </li>
              );
            })}
          </ul>
        )}
      </div>

      <ConfirmDialog
        open={removing !== null}
        title={removing ? `Remove ${nameOf(removing.user_id)}?` : 'Remove member?'}
        confirmLabel={remove.isPending ? 'Removing…' : 'Yes, remove'}
        busy={remove.isPending}
        error={remove.error}
        onConfirm={confirmRemove}
        onClose={() => setRemoving(null)}
      >
        <p>
          {removing ? nameOf(removing.user_id) : 'They'} will lose access to “{project.name}”, its tasks and comments. What they wrote stays.
        </p>
      </ConfirmDialog>

      <ConfirmDialog
        open={leaving}
        title={`Leave “${project.name}”?`}
        confirmLabel={leave.isPending ? 'Leaving…' : 'Yes, leave'}
        busy={leave.isPending}
        error={leave.error}
        onConfirm={confirmLeave}
        onClose={() => setLeaving(false)}
      >
        <p>You will lose access to the project, its tasks and comments until an owner adds you again.</p>
        {soleOwner && <p className="font-medium text-amber-800">You are its only owner: make someone else an owner first.</p>}
      </ConfirmDialog>
    </section>
  );
}

function RoleSelect({ label, value, busy, onChange }: { label: string; value: Role; busy: boolean; onChange: (role: Role) => void }) {
  return (
    <label className="flex items-center gap-2 text-sm">
      <span className="sr-only">{label}</span>
      <select
        value={value}
        aria-busy={busy || undefined}
        disabled={busy}
        onChange={(e) => onChange(e.target.value as Role)}
        className="min-h-10 rounded-md border-0 bg-white py-1.5 pr-8 pl-3 text-sm text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600 disabled:opacity-60"
      >
        {ROLES.map((role) => (
          <option key={role} value={role} title={ROLE_HINTS[role]}>
            {roleLabel(role)}
          </option>
        ))}
      </select>
    </label>
  );
}
