// Project settings (`/projects/:id/settings`): details (rename), members and roles, adding
// people, and deleting the project. Follows the project live, so changes made elsewhere show
// up, and says so when the caller was removed or the project deleted meanwhile.
import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { Link } from '@/app/router';
import { usePage } from '@/app/usePage';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError } from '@/lib/api';
import { useLiveProject } from '@/lib/useLive';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import { AddMember } from '@/features/members/components/AddMember';
import { MembersSection } from '@/features/members/components/MembersSection';
import { removesUser } from '@/features/members/logic';
import { useProject } from '../api';
import { canDeleteProject, canEditProject, canManageMembers } from '../permissions';
import { DangerZone } from './DangerZone';
import { ProjectDetails } from './ProjectDetails';

/** Why the page stopped showing the project. */
type Gone = 'removed' | 'deleted' | 'left';

export function ProjectSettingsPage({ projectId }: { projectId: string }) {
  const headingRef = usePage('Project settings');
  const session = useRequiredSession();
  const [gone, setGone] = useState<Gone | null>(null);
  const active = gone === null;

  const queryClient = useQueryClient();
  useLiveProject(active ? projectId : null, (message) => {
    let reason: Gone | null = null;
    if (message.kind === 'unsubscribed') reason = message.reason === 'deleted' ? 'deleted' : 'removed';
    else if (message.kind === 'event' && removesUser(message.event, session.user.id)) reason = 'removed';
    if (!reason) return;
    setGone(reason);
    // useLiveProject has just started refetching the project: those requests would end in 404s
    // now, so abort them.
    void queryClient.cancelQueries({ queryKey: keys.project(projectId) });
    void queryClient.cancelQueries({ queryKey: keys.members(projectId) });
  });
  const query = useProject(projectId, active);
  const versioned = query.data;
  const project = versioned?.project;
  const who = { projectRole: project?.role, accountRole: session.user.role };
  const boardUrl = `/projects/${encodeURIComponent(projectId)}`;

  let body;
  if (gone === 'removed' || gone === 'deleted') {
    body = <GoneNotice reason={gone} />;
  } else if (gone === 'left') {
    body = null;
  } else if (query.isPending) {
    body = (
      <p role="status" className="py-10 text-center text-sm text-zinc-600">
        Loading project…
      </p>
    );
  } else if (query.isError) {
    body =
      query.error instanceof ApiError && query.error.status === 404 ? (
        <GoneNotice reason="missing" />
      ) : (
        <div className="space-y-3">
          <ErrorSummary error={query.error} />
          <Button variant="secondary" onClick={() => void query.refetch()}>
            Try again
          </Button>
        </div>
      );
  } else if (versioned && project) {
    body = (
      <div className="space-y-6">
        <ProjectDetails versioned={versioned} canEdit={canEditProject(who)} />
        <MembersSection project={project} canManage={canManageMembers(who)} enabled={active} onLeft={() => setGone('left')} />
        {canManageMembers(who) && <AddMember projectId={project.id} enabled={active} />}
        {canDeleteProject(who) && <DangerZone versioned={versioned} onDeleted={() => setGone('left')} />}
      </div>
    );
  }

  return (
    <div className="mx-auto max-w-3xl">
      {active && (
        <Link to={boardUrl} className="inline-flex items-center gap-1 rounded text-sm font-medium text-indigo-700 hover:text-indigo-900">
          <span aria-hidden="true">←</span> Back to board
        </Link>
      )}
      <h1 ref={headingRef} tabIndex={-1} className="mt-2 text-2xl font-semibold tracking-tight text-zinc-900">
        Project settings
      </h1>
      {project && active && (
        <p className="mt-1 text-sm break-words text-zinc-600" data-testid="settings-project-name">
          {project.name}
          <span className="mx-2 text-zinc-400" aria-hidden="true">
            ·
          </span>
          <span>
            Your role: <span className="font-medium text-zinc-800 capitalize">{session.user.role === 'admin' && project.role !== 'owner' ? 'admin' : project.role}</span>
          </span>
        </p>
      )}
      <div className="mt-6">{body}</div>
    </div>
  );
}

function GoneNotice({ reason }: { reason: 'removed' | 'deleted' | 'missing' }) {
  const text = {
    removed: { title: 'You no longer have access to this project.', detail: 'An owner removed you from it.' },
    deleted: { title: 'This project was deleted.', detail: 'Its tasks and comments are gone too.' },
    missing: { title: 'Project not found.', detail: 'It may have been deleted, or you are not a member.' },
  }[reason];
  return (
    <div role={reason === 'missing' ? undefined : 'alert'} className="rounded-xl border border-amber-200 bg-amber-50 px-5 py-6 text-amber-900">
      <p className="font-medium">{text.title}</p>
      <p className="mt-1 text-sm">{text.detail}</p>
      <Link to="/projects" className="mt-3 inline-block rounded text-sm font-medium underline">
        Go to your projects
      </Link>
    </div>
  );
}
