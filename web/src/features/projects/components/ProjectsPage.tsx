// The projects page: app header (user + sign out), the project list and the create form.
import { Button } from '@/components/ui/Button';
import { Logo } from '@/components/ui/Logo';
import { navigate } from '@/app/router';
import { usePage } from '@/app/usePage';
import { useRequiredSession, useSession } from '@/features/auth/session';
import { CreateProjectForm } from './CreateProjectForm';
import { ProjectList } from './ProjectList';

export function ProjectsPage() {
  const headingRef = usePage('Projects');
  const session = useRequiredSession();
  const { signOut } = useSession();

  function handleSignOut() {
    signOut();
    navigate('/login');
  }

  return (
    <div className="min-h-dvh">
      <header className="border-b border-zinc-200 bg-white">
        <div className="mx-auto flex h-14 max-w-5xl items-center justify-between gap-4 px-4 sm:px-6">
          <Logo />
          <div className="flex min-w-0 items-center gap-2 sm:gap-3">
            <p className="truncate text-sm text-zinc-700">
              <span className="sr-only">Signed in as </span>
              <span data-testid="user-name" className="font-medium text-zinc-900">
                {session.user.name}
              </span>
            </p>
            <Button variant="ghost" onClick={handleSignOut} className="px-3">
              Sign out
            </Button>
          </div>
        </div>
      </header>
      <main className="mx-auto max-w-5xl px-4 py-8 sm:px-6">
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
      </main>
    </div>
  );
}
