// The frame of the account settings pages: a tab bar between them (Profile and preferences /
// Security / Sessions), the page's h1 and an introduction.
import type { ReactNode, RefObject } from 'react';
import { Link, usePathname } from '@/app/router';

const SETTINGS_TABS = [
  { to: '/settings/profile', label: 'Profile and preferences' },
  { to: '/settings/security', label: 'Security' },
  { to: '/settings/sessions', label: 'Sessions' },
] as const;

export function SettingsLayout({
  title,
  intro,
  headingRef,
  children,
}: {
  title: string;
  intro?: ReactNode;
  headingRef: RefObject<HTMLHeadingElement | null>;
  children: ReactNode;
}) {
  const path = usePathname();
  return (
    <div className="mx-auto max-w-3xl">
      <nav aria-label="Account settings" className="-mx-3 mb-6 overflow-x-auto border-b border-zinc-200 px-3 sm:mx-0 sm:px-0">
        <ul className="flex min-w-max gap-1">
          {SETTINGS_TABS.map((tab) => {
            const current = path === tab.to;
            return (
              <li key={tab.to}>
                <Link
                  to={tab.to}
                  aria-current={current ? 'page' : undefined}
                  className={`-mb-px inline-flex min-h-11 items-center rounded-t-md border-b-2 px-3 text-sm font-medium ${
                    current
                      ? 'border-indigo-600 text-indigo-700'
                      : 'border-transparent text-zinc-600 hover:border-zinc-300 hover:text-zinc-900'
                  }`}
                >
                  {tab.label}
                </Link>
              </li>
            );
          })}
        </ul>
      </nav>
      <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
        {title}
      </h1>
      {intro && <div className="mt-1 text-sm text-zinc-600">{intro}</div>}
      <div className="mt-6 space-y-6">{children}</div>
    </div>
  );
}

/** One card of a settings page, labelled by its h2. */
export function SettingsSection({
  id,
  title,
  description,
  tone = 'normal',
  children,
}: {
  id: string;
  title: string;
  description?: ReactNode;
  tone?: 'normal' | 'danger';
  children: ReactNode;
}) {
  return (
    <section
      aria-labelledby={id}
      className={`rounded-xl border bg-white p-5 shadow-sm sm:p-6 ${tone === 'danger' ? 'border-red-200' : 'border-zinc-200'}`}
    >
      <h2 id={id} className={`text-base font-semibold ${tone === 'danger' ? 'text-red-700' : 'text-zinc-900'}`}>
        {title}
      </h2>
      {description && <div className="mt-1 text-sm text-zinc-600">{description}</div>}
      <div className="mt-5">{children}</div>
    </section>
  );
}

/** A short success line under a form, announced politely. */
export function StatusLine({ children }: { children: ReactNode }) {
  return (
    <p role="status" className="text-sm text-emerald-800">
      {children}
    </p>
  );
}
