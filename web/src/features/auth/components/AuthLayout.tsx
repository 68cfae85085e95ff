// The centred card layout shared by the sign-in and register pages.
import type { ReactNode, RefObject } from 'react';
import { Logo } from '@/components/ui/Logo';

export function AuthLayout({
  title,
  subtitle,
  headingRef,
  children,
  footer,
}: {
  title: string;
  subtitle?: string;
  headingRef: RefObject<HTMLHeadingElement | null>;
  children: ReactNode;
  footer?: ReactNode;
}) {
  return (
    <div className="flex min-h-dvh flex-col items-center px-4 py-10 sm:justify-center sm:py-16">
      <header className="mb-8">
        <Logo className="text-lg" />
      </header>
      <main className="w-full max-w-sm">
        <div className="rounded-xl border border-zinc-200 bg-white p-6 shadow-sm sm:p-8">
          <h1 ref={headingRef} tabIndex={-1} className="text-xl font-semibold tracking-tight text-zinc-900">
            {title}
          </h1>
          {subtitle && <p className="mt-1 text-sm text-zinc-600">{subtitle}</p>}
          <div className="mt-6">{children}</div>
        </div>
        {footer && <div className="mt-6 text-center text-sm text-zinc-600">{footer}</div>}
      </main>
    </div>
  );
}
