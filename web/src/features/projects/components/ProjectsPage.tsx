// The projects page: the caller's projects (each linking to its board) and the create form
// (not for read-only guest accounts).
import { usePage } from '@/app/usePage';
import { useRequiredSession } from '@/features/auth/session';
import { canCreateProjects } from '../permissions';
import { CreateProjectForm } from './CreateProjectForm';
import { ProjectList } from './ProjectList';

export function ProjectsPage() {
  const headingRef = usePage('Projects');
  const session = useRequiredSession();
  const canCreate = canCreateProjects(session.user.role);
  return (
    <>
      <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
        Projects
      </h1>
      <div className={`mt-6 grid grid-cols-1 gap-6 lg:items-start ${canCreate ? 'lg:grid-cols-[minmax(0,1fr)_20rem]' : ''}`}>
        {canCreate && (
          <div className="lg:col-start-2 lg:row-start-1">
            <CreateProjectForm />
          </div>
        )}
        <section aria-label="Your projects" className="lg:col-start-1 lg:row-start-1">
          <ProjectList canCreate={canCreate} />
        </section>
      </div>
    </>
  );
}
