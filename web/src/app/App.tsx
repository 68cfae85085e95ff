// The app root: providers (TanStack Query, session) and the route table with guards.
import { useState } from 'react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { ApiError } from '@/lib/api';
import { SessionProvider, useSession } from '@/features/auth/session';
import { LoginPage } from '@/features/auth/components/LoginPage';
import { RegisterPage } from '@/features/auth/components/RegisterPage';
import { ProjectsPage } from '@/features/projects/components/ProjectsPage';
import { NotFoundPage } from './NotFoundPage';
import { Redirect, usePathname } from './router';

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
        <Routes />
      </SessionProvider>
    </QueryClientProvider>
  );
}

function Routes() {
  const path = usePathname();
  const { session } = useSession();
  const signedIn = session !== null;

  switch (path) {
    case '/':
      return <Redirect to={signedIn ? '/projects' : '/login'} />;
    case '/login':
      return signedIn ? <Redirect to="/projects" /> : <LoginPage />;
    case '/register':
      return signedIn ? <Redirect to="/projects" /> : <RegisterPage />;
    case '/projects':
      return signedIn ? <ProjectsPage /> : <Redirect to="/login" />;
    default:
      return <NotFoundPage />;
  }
}
