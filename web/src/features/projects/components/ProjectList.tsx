// The caller's projects: loading, error, empty and list states, with "Load more" paging.
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { useProjects } from '../api';
import type { Project } from '../types';

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

function formatDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat.format(date);
}

export function ProjectList() {
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
        <p className="mt-1 text-sm text-zinc-600">Use the New project form to create your first one.</p>
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

function ProjectRow({ project }: { project: Project }) {
  return (
    <li className="px-4 py-3.5 sm:px-5">
      <div className="flex items-start justify-between gap-3">
        <div className="min-w-0">
          <p className="truncate text-sm font-medium text-zinc-900" title={project.name}>
            {project.name}
          </p>
          {project.description && <p className="mt-0.5 line-clamp-2 text-sm text-zinc-600">{project.description}</p>}
        </div>
        <span className="shrink-0 rounded-full bg-zinc-100 px-2 py-0.5 text-xs font-medium text-zinc-700 capitalize">
          {project.role}
        </span>
      </div>
      <p className="mt-1.5 text-xs text-zinc-600">
        Created <time dateTime={project.created_at}>{formatDate(project.created_at)}</time>
      </p>
    </li>
  );
}
