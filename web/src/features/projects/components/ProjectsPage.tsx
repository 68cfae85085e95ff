// The projects page: the project list and the create form (inside the app shell).
import { usePage } from '@/app/usePage';
import { CreateProjectForm } from './CreateProjectForm';
import { ProjectList } from './ProjectList';

export function ProjectsPage() {
  const headingRef = usePage('Projects');
  return (
    <>
      <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
        Projects
      </h1>
      <div className="mt-6 grid grid-cols-1 gap-6 lg:grid-cols-[minmax(0,1fr)_20rem] lg:items-start">
        <div className="lg:col-start-2 lg:row-start-1">
          <CreateProjectForm />
        </div>
        <section aria-label="Your projects" className="lg:col-start-1 lg:row-start-1">
          <ProjectList />
        </section>
      </div>
    </>
  );
}
