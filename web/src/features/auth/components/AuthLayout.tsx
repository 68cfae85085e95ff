// The centred card layout of the sign-in, register and password pages. Pages that also open
// while signed in (reset password, verify email) sit inside the app shell then: the card is
// shown without its own logo header and <main> (the shell has both).
import type { ReactNode, RefObject } from 'react';
import { Logo } from '@/components/ui/Logo';
import { useSession } from '../session';

export function AuthLayout({
  title,
  subtitle,
  headingRef,
  children,
  footer,
}: {
  title: string;
  subtitle?: ReactNode;
  headingRef: RefObject<HTMLHeadingElement | null>;
  children: ReactNode;
  footer?: ReactNode;
}) {
  const { session } = useSession();
  const card = (
    <>
      <div className="rounded-xl border border-zinc-200 bg-white p-6 shadow-sm sm:p-8">
        <h1 ref={headingRef} tabIndex={-1} className="text-xl font-semibold tracking-tight text-zinc-900">
          {title}
        </h1>
        {subtitle && <div className="mt-1 text-sm text-zinc-600">{subtitle}</div>}
        <div className="mt-6">{children}</div>
      </div>
      {footer && <div className="mt-6 text-center text-sm text-zinc-600">{footer}</div>}
    </>
  );

  if (session) {
    return <div className="mx-auto w-full max-w-sm py-4 sm:py-10">{card}</div>;
  }
  return (
    <div className="flex min-h-dvh flex-col items-center px-4 py-10 sm:justify-center sm:py-16">
      <header className="mb-8">
        <Logo className="text-lg" />
      </header>
      <main className="w-full max-w-sm">{card}</main>
    </div>
  );
}
