// The caller's projects: loading, error, empty and list states, with "Load more" paging. Each
// row links to the project's board (the link is named by the project) and its settings.
import { useId } from 'react';
import { Link } from '@/app/router';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { useProjects } from '../api';
import type { Project } from '../types';

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

function formatDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat.format(date);
}

export function ProjectList({ canCreate = true }: { canCreate?: boolean }) {
  const query = useProjects();

  if (query.isPending) {
    return (
      <p role="status" className="py-10 text-center text-sm text-zinc-600">
        Loading projects…
      </p>
    );
  }
  if (query.isError) {
    return (
      <div className="space-y-3">
        <ErrorSummary error={query.error} />
        <Button variant="secondary" onClick={() => void query.refetch()}>
          Try again
        </Button>
      </div>
    );
  }

  const projects = query.data.pages.flatMap((page) => page.items);
  if (projects.length === 0) {
    return (
      <div className="rounded-xl border border-dashed border-zinc-300 bg-white px-6 py-12 text-center">
        <p className="text-sm font-medium text-zinc-900">No projects yet</p>
        <p className="mt-1 text-sm text-zinc-600">
          {canCreate ? 'Use the New project form to create your first one.' : 'An owner can add you to a project.'}
        </p>
      </div>
    );
  }

  return (
    <div className="space-y-4">
      <ul aria-label="Projects" className="divide-y divide-zinc-200 overflow-hidden rounded-xl border border-zinc-200 bg-white shadow-sm">
        {projects.map((project) => (
          <ProjectRow key={project.id} project={project} />
        ))}
      </ul>
      {query.hasNextPage && (
        <Button variant="secondary" busy={query.isFetchingNextPage} onClick={() => void query.fetchNextPage()}>
          Load more
        </Button>
      )}
    </div>
  );
}

const ROLE_STYLES: Record<string, string> = {
  owner: 'bg-indigo-50 text-indigo-800 ring-indigo-200',
  editor: 'bg-emerald-50 text-emerald-800 ring-emerald-200',
  viewer: 'bg-zinc-100 text-zinc-700 ring-zinc-200',
};

function ProjectRow({ project }: { project: Project }) {
  const nameId = useId();
  const board = `/projects/${encodeURIComponent(project.id)}`;
  return (
    <li className="relative px-4 py-3.5 hover:bg-zinc-50 sm:px-5" data-testid="project-row">
      <div className="flex items-start justify-between gap-3">
        <div className="min-w-0">
          <Link
            id={nameId}
            to={board}
            className="block truncate rounded text-sm font-medium text-zinc-900 after:absolute after:inset-0 after:content-[''] hover:text-indigo-700"
            title={project.name}
          >
            {project.name}
          </Link>
          {project.description?.trim() ? (
            <p className="mt-0.5 line-clamp-2 text-sm break-words text-zinc-600">{project.description}</p>
          ) : null}
        </div>
        <span
          className={`shrink-0 rounded-full px-2 py-0.5 text-xs font-medium capitalize ring-1 ring-inset ${ROLE_STYLES[project.role] ?? ROLE_STYLES.viewer}`}
        >
          <span className="sr-only">Your role: </span>
          {project.role}
        </span>
      </div>
      <div className="mt-1.5 flex items-center justify-between gap-3 text-xs text-zinc-600">
        <p>
          Created <time dateTime={project.created_at}>{formatDate(project.created_at)}</time>
        </p>
        <Link
          to={`${board}/settings`}
          aria-describedby={nameId}
          className="relative z-10 rounded px-1 py-0.5 font-medium text-indigo-700 hover:text-indigo-900 hover:underline"
        >
          Settings
        </Link>
      </div>
    </li>
  );
}
