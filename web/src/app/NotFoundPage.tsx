// Shown for client routes this version does not know.
import { Logo } from '@/components/ui/Logo';
import { Link } from './router';
import { usePage } from './usePage';

export function NotFoundPage() {
  const headingRef = usePage('Page not found');
  return (
    <main className="mx-auto flex min-h-dvh max-w-md flex-col items-center justify-center px-4 text-center">
      <Logo className="text-lg" />
      <h1 ref={headingRef} tabIndex={-1} className="mt-8 text-xl font-semibold text-zinc-900">
        Page not found
      </h1>
      <p className="mt-2 text-sm text-zinc-600">There is nothing at this address.</p>
      <Link to="/" className="mt-6 rounded font-medium text-indigo-700 hover:text-indigo-900">
        Go to Trellis
      </Link>
    </main>
  );
}
