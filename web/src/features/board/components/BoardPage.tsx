// A project's page: header (name, the caller's role, Board/List switch, Settings), the board or
// the list, the task details drawer (/projects/:id/tasks/:taskId), and live updates: changes
// by other people flash their card or row; losing access shows why.
import { useCallback, useMemo, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { Link, navigate, useSearchParams } from '@/app/router';
import { usePage } from '@/app/usePage';
import { Alert } from '@/components/ui/Alert';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError } from '@/lib/api';
import { eventTaskId, type LiveMessage } from '@/lib/live';
import { keys } from '@/lib/queryKeys';
import { useLiveProject } from '@/lib/useLive';
import { useRequiredSession } from '@/features/auth/session';
import { TaskDetails } from '@/features/tasks/components/TaskDetails';
import { useMembers } from '@/features/members/api';
import { useProject } from '@/features/projects/api';
import { filtersFromSearch } from '../filters';
import { OwnChanges } from '../ownChanges';
import { useFlashes } from '../useFlashes';
import { BoardView, BoardSkeleton } from './BoardView';
import { ListView, listSearch } from './ListView';

const ROLE_LABELS: Record<string, string> = { owner: 'Owner', editor: 'Editor', viewer: 'Viewer' };

/** Why the live connection dropped the project, in words. */
export function goneMessage(reason: string): { title: string; body: string } {
  if (reason === 'deleted') return { title: 'This project was deleted', body: 'Its tasks are gone with it.' };
  return { title: 'You no longer have access to this project', body: 'An owner removed you from it.' };
}

export function BoardPage({ projectId, view, taskId }: { projectId: string; view: 'board' | 'list'; taskId?: string }) {
  const session = useRequiredSession();
  const queryClient = useQueryClient();
  const search = useSearchParams();
  const [gone, setGone] = useState<string | null>(null);
  const [own] = useState(() => new OwnChanges());
  const [flashing, flash] = useFlashes();
  const live = !gone;

  const project = useProject(projectId, live);
  const members = useMembers(projectId, live && project.isSuccess);
  // The list over which the details opened (`?view=list`), else the board.
  const shown: 'board' | 'list' = taskId ? (search.get('view') === 'list' ? 'list' : 'board') : view;
  const memberList = useMemo(() => members.data ?? [], [members.data]);
  const memberIds = useMemo(() => memberList.map((m) => m.user_id), [memberList]);

  const onMessage = useCallback(
    (message: LiveMessage) => {
      if (message.kind === 'unsubscribed') {
        setGone(message.reason);
        // The access is gone: stop what the refetch would ask (it could only fail).
        void queryClient.cancelQueries({ queryKey: keys.tasks(projectId) });
        void queryClient.cancelQueries({ queryKey: keys.members(projectId) });
        void queryClient.cancelQueries({ queryKey: keys.project(projectId) });
        return;
      }
      if (message.kind !== 'event') return;
      const id = eventTaskId(message.event);
      if (!id || message.event.type === 'task.deleted') return;
      const mutations = queryClient
        .getMutationCache()
        .getAll()
        .map((m) => m.state);
      if (own.isOwn(message.event, mutations)) return;
      flash(id);
    },
    [flash, own, projectId, queryClient],
  );
  useLiveProject(live ? projectId : null, onMessage);

  const name = project.data?.project.name;
  const headingRef = usePage(gone ? 'Project unavailable' : name ? `${name}${shown === 'list' ? ' · List' : ''}` : project.isError ? 'Project not found' : 'Project');

  const base = `/projects/${encodeURIComponent(projectId)}`;
  const closeDetails = () => {
    if (shown === 'list') {
      const s = listSearch(filtersFromSearch(search), false).toString();
      navigate(`${base}/list${s ? `?${s}` : ''}`);
    } else navigate(base);
  };

  const heading = 'text-2xl font-semibold tracking-tight text-zinc-900 break-words';

  if (gone) {
    const m = goneMessage(gone);
    return (
      <div className="mx-auto max-w-xl space-y-4">
        <h1 ref={headingRef} tabIndex={-1} className={heading}>
          {name ?? 'Project unavailable'}
        </h1>
        <Alert tone="error" title={m.title}>
          <p>{m.body}</p>
          <p className="mt-2">
            <Link to="/projects" className="font-medium underline">
              Back to your projects
            </Link>
          </p>
        </Alert>
      </div>
    );
  }

  if (project.isError) {
    const notFound = project.error instanceof ApiError && (project.error.status === 404 || project.error.status === 422 || project.error.status === 400);
    return (
      <div className="mx-auto max-w-xl space-y-4">
        <h1 ref={headingRef} tabIndex={-1} className={heading}>
          {notFound ? 'Project not found' : 'Could not load the project'}
        </h1>
        {notFound ? (
          <p className="text-sm text-zinc-700">It does not exist, or you are not a member of it.</p>
        ) : (
          <>
            <ErrorSummary error={project.error} />
            <Button variant="secondary" onClick={() => void project.refetch()}>
              Try again
            </Button>
          </>
        )}
        <p>
          <Link to="/projects" className="text-sm font-medium text-indigo-700 underline">
            Back to your projects
          </Link>
        </p>
      </div>
    );
  }

  const role = project.data?.project.role;
  const isGuest = session.user.role === 'guest';
  const canEdit = !isGuest && (role === 'owner' || role === 'editor');
  const tab = (to: string, label: string, current: boolean) => (
    <Link
      to={to}
      aria-current={current ? 'page' : undefined}
      className={`inline-flex min-h-9 items-center rounded-md px-3 text-sm font-medium ${
        current ? 'bg-white text-zinc-900 shadow-sm ring-1 ring-zinc-200' : 'text-zinc-700 hover:bg-white/70 hover:text-zinc-900'
      }`}
    >
      {label}
    </Link>
  );

  return (
    <div className="space-y-5">
      <header className="flex flex-wrap items-end justify-between gap-x-6 gap-y-3">
        <div className="min-w-0">
          <p className="text-sm">
            <Link to="/projects" className="text-zinc-600 hover:text-zinc-900 hover:underline">
              Projects
            </Link>
          </p>
          <h1 ref={headingRef} tabIndex={-1} className={`${heading} mt-0.5`}>
            {name ?? (
              <>
                <span className="sr-only">Loading project…</span>
                <span aria-hidden="true" className="inline-block h-7 w-56 animate-pulse rounded bg-zinc-200 align-middle" />
              </>
            )}
          </h1>
          <p className="mt-1 flex flex-wrap items-center gap-x-3 gap-y-1 text-sm text-zinc-600">
            {role && (
              <span data-testid="project-role">
                Your role:{' '}
                <span className="rounded-full bg-zinc-100 px-2 py-0.5 text-xs font-medium text-zinc-800 ring-1 ring-zinc-200">
                  {ROLE_LABELS[role] ?? role}
                </span>
              </span>
            )}
            {role && !canEdit && <span>Read only: you can look but not change tasks.</span>}
          </p>
        </div>
        <div className="flex items-center gap-2">
          <nav aria-label="Project views" className="inline-flex gap-1 rounded-lg bg-zinc-100 p-1 ring-1 ring-zinc-200">
            {tab(base, 'Board', shown === 'board')}
            {tab(`${base}/list`, 'List', shown === 'list')}
          </nav>
          <Link
            to={`${base}/settings`}
            className="inline-flex min-h-10 items-center gap-1.5 rounded-md px-3 text-sm font-medium text-zinc-700 ring-1 ring-inset ring-zinc-300 hover:bg-zinc-50"
          >
            <svg aria-hidden="true" viewBox="0 0 16 16" className="size-4 fill-current">
              <path d="M6.9 1h2.2l.35 1.78c.4.15.77.36 1.1.62l1.72-.58 1.1 1.9-1.37 1.2a4.6 4.6 0 0 1 0 1.26l1.37 1.2-1.1 1.9-1.72-.58c-.33.26-.7.47-1.1.62L9.1 15H6.9l-.35-1.78a4.5 4.5 0 0 1-1.1-.62l-1.72.58-1.1-1.9 1.37-1.2a4.6 4.6 0 0 1 0-1.26l-1.37-1.2 1.1-1.9 1.72.58c.33-.26.7-.47 1.1-.62L6.9 1ZM8 5.75a2.25 2.25 0 1 0 0 4.5 2.25 2.25 0 0 0 0-4.5Z" />
            </svg>
            Settings
          </Link>
        </div>
      </header>

      {project.isPending ? (
        <BoardSkeleton />
      ) : shown === 'board' ? (
        <BoardView projectId={projectId} memberIds={memberIds} flashing={flashing} canEdit={canEdit} own={own} enabled={live} />
      ) : (
        <ListView projectId={projectId} members={memberList} flashing={flashing} enabled={live} />
      )}

      {/* The details render their own side drawer (a dialog titled with the task's title). */}
      {taskId && <TaskDetails key={taskId} taskId={taskId} projectId={projectId} onClose={closeDetails} />}
    </div>
  );
}
