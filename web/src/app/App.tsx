// The app root: providers (TanStack Query, session, live updates) and the route table with its
// guards: signed-out pages, signed-in pages inside the app shell, admin pages for admins.
import { lazy, Suspense, useState, type ReactNode } from 'react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { ApiError } from '@/lib/api';
import { LiveProvider } from '@/lib/useLive';
import { Spinner } from '@/components/ui/Spinner';
import { SessionProvider, useSession } from '@/features/auth/session';
import { LoginPage } from '@/features/auth/components/LoginPage';
import { RegisterPage } from '@/features/auth/components/RegisterPage';
import { ForgotPasswordPage } from '@/features/auth/components/ForgotPasswordPage';
import { ResetPasswordPage } from '@/features/auth/components/ResetPasswordPage';
import { VerifyEmailPage } from '@/features/auth/components/VerifyEmailPage';
import { EmailChangePage } from '@/features/auth/components/EmailChangePage';
import { ProfilePage } from '@/features/account/components/ProfilePage';
import { SecurityPage } from '@/features/account/components/SecurityPage';
import { SessionsPage } from '@/features/account/components/SessionsPage';
import { ProjectsPage } from '@/features/projects/components/ProjectsPage';
import { ProjectSettingsPage } from '@/features/projects/components/ProjectSettingsPage';
import { BoardPage } from '@/features/board/components/BoardPage';
import { SearchPage } from '@/features/search/components/SearchPage';
import { AppShell } from './AppShell';
import { NotFoundPage } from './NotFoundPage';
import { matchPath, Redirect, safeNext, usePathname } from './router';

// The admin console is for a few people: it loads on demand, outside the first page's JavaScript.
const AdminDashboardPage = lazy(() =>
  import('@/features/admin/components/AdminDashboardPage').then((m) => ({ default: m.AdminDashboardPage })),
);
const AdminUsersPage = lazy(() => import('@/features/admin/components/AdminUsersPage').then((m) => ({ default: m.AdminUsersPage })));
const AdminAuditPage = lazy(() => import('@/features/admin/components/AdminAuditPage').then((m) => ({ default: m.AdminAuditPage })));

/** Retries transient failures only: never a 4xx, at most twice. */
export function shouldRetry(failureCount: number, error: unknown): boolean {
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
  return failureCount < 2;
}

function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { retry: shouldRetry, staleTime: 30_000, refetchOnWindowFocus: true },
      mutations: { retry: false },
    },
  });
}

export function App() {
  const [queryClient] = useState(createQueryClient);
  return (
    <QueryClientProvider client={queryClient}>
      <SessionProvider>
        <LiveProvider>
          <Routes />
        </LiveProvider>
      </SessionProvider>
    </QueryClientProvider>
  );
}

type Access = 'public' | 'signed-out' | 'signed-in' | 'admin';
/** A route's parameters: every `:name` of its pattern is present (matchPath guarantees it). */
type Params = { id: string; taskId: string };
type Route = { pattern: string; access: Access; render: (params: Params) => ReactNode };

/** Every client route. Order matters only where patterns overlap (none do). */
export const ROUTES: Route[] = [
  { pattern: '/login', access: 'signed-out', render: () => <LoginPage /> },
  { pattern: '/register', access: 'signed-out', render: () => <RegisterPage /> },
  { pattern: '/forgot-password', access: 'signed-out', render: () => <ForgotPasswordPage /> },
  { pattern: '/reset-password', access: 'public', render: () => <ResetPasswordPage /> },
  { pattern: '/verify-email', access: 'public', render: () => <VerifyEmailPage /> },
  { pattern: '/confirm-email', access: 'public', render: () => <EmailChangePage kind="confirm" /> },
  { pattern: '/undo-email-change', access: 'public', render: () => <EmailChangePage kind="undo" /> },
  { pattern: '/projects', access: 'signed-in', render: () => <ProjectsPage /> },
  { pattern: '/projects/:id', access: 'signed-in', render: (p) => <BoardPage key={p.id} projectId={p.id} view="board" /> },
  { pattern: '/projects/:id/list', access: 'signed-in', render: (p) => <BoardPage key={p.id} projectId={p.id} view="list" /> },
  {
    pattern: '/projects/:id/tasks/:taskId',
    access: 'signed-in',
    render: (p) => <BoardPage key={p.id} projectId={p.id} view="board" taskId={p.taskId} />,
  },
  { pattern: '/projects/:id/settings', access: 'signed-in', render: (p) => <ProjectSettingsPage projectId={p.id} /> },
  { pattern: '/search', access: 'signed-in', render: () => <SearchPage /> },
  { pattern: '/settings/profile', access: 'signed-in', render: () => <ProfilePage /> },
  { pattern: '/settings/security', access: 'signed-in', render: () => <SecurityPage /> },
  { pattern: '/settings/sessions', access: 'signed-in', render: () => <SessionsPage /> },
  { pattern: '/admin', access: 'admin', render: () => <AdminDashboardPage /> },
  { pattern: '/admin/users', access: 'admin', render: () => <AdminUsersPage /> },
  { pattern: '/admin/audit', access: 'admin', render: () => <AdminAuditPage /> },
];

/** The route a path shows, with its parameters. */
export function findRoute(path: string): { route: Route; params: Params } | null {
  for (const route of ROUTES) {
    const params = matchPath(route.pattern, path);
    if (params) return { route, params: params as Params };
  }
  return null;
}

function Routes() {
  const path = usePathname();
  const { status, session } = useSession();

  if (status === 'loading') {
    return (
      <div className="grid min-h-dvh place-items-center">
        <Spinner />
      </div>
    );
  }
  const signedIn = session !== null;
  if (path === '/') return <Redirect to={signedIn ? '/projects' : '/login'} />;

  const found = findRoute(path);
  if (!found) return signedIn ? <AppShell><NotFoundPage /></AppShell> : <NotFoundPage />;
  const { route, params } = found;
  switch (route.access) {
    case 'public':
      return signedIn ? <AppShell>{route.render(params)}</AppShell> : <>{route.render(params)}</>;
    case 'signed-out':
      if (signedIn) {
        const next = new URLSearchParams(window.location.search).get('next');
        return <Redirect to={safeNext(next)} />;
      }
      return <>{route.render(params)}</>;
    case 'signed-in':
    case 'admin':
      if (!signedIn) {
        const here = `${window.location.pathname}${window.location.search}`;
        return <Redirect to={`/login?next=${encodeURIComponent(here)}`} />;
      }
      if (route.access === 'admin' && session.user.role !== 'admin') return <AppShell><NotFoundPage /></AppShell>;
      return (
        <AppShell>
          <Suspense fallback={<Spinner />}>{route.render(params)}</Suspense>
        </AppShell>
      );
  }
}
