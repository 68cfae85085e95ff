// The frame of every signed-in page: skip link, header with navigation, search (also on "/" or
// Ctrl/⌘+K), the account menu, and the person's theme applied from their preferences.
import { useEffect, useState, type ReactNode } from 'react';
import { Logo } from '@/components/ui/Logo';
import { useRequiredSession, useSession } from '@/features/auth/session';
import { usePreferences } from '@/features/account/api';
import { SearchDialog } from '@/features/search/components/SearchDialog';
import { applyTheme } from '@/lib/theme';
import { useLiveStatus } from '@/lib/useLive';
import { Link, navigate, usePathname } from './router';

const NAV = [
  { to: '/projects', label: 'Projects', admin: false },
  { to: '/admin', label: 'Admin', admin: true },
] as const;

const ACCOUNT = [
  { to: '/settings/profile', label: 'Profile and preferences' },
  { to: '/settings/security', label: 'Security' },
  { to: '/settings/sessions', label: 'Sessions' },
] as const;

/** Whether a key press should open search: "/" outside text fields, or Ctrl/⌘+K anywhere. */
export function isSearchShortcut(e: { key: string; ctrlKey: boolean; metaKey: boolean; altKey: boolean }, inTextField: boolean): boolean {
  if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'k') return true;
  return e.key === '/' && !e.ctrlKey && !e.metaKey && !e.altKey && !inTextField;
}

function isTextField(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName);
}

function ThemeFromPreferences() {
  const prefs = usePreferences();
  const theme = prefs.data?.theme;
  useEffect(() => {
    if (theme) applyTheme(theme);
  }, [theme]);
  return null;
}

function LiveIndicator() {
  const status = useLiveStatus();
  if (status !== 'offline') return null;
  return (
    <span role="status" className="hidden rounded-full bg-amber-50 px-2 py-0.5 text-xs text-amber-800 sm:inline">
      Reconnecting…
    </span>
  );
}

export function AppShell({ children }: { children: ReactNode }) {
  const session = useRequiredSession();
  const { signOut } = useSession();
  const path = usePathname();
  const [searchOpen, setSearchOpen] = useState(false);
  const [menuOpen, setMenuOpen] = useState(false);
  const isAdmin = session.user.role === 'admin';

  useEffect(() => {
    function onKey(e: KeyboardEvent) {
      if (isSearchShortcut(e, isTextField(e.target))) {
        e.preventDefault();
        setSearchOpen(true);
      }
    }
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  // A new page closes the menu.
  useEffect(() => setMenuOpen(false), [path]);

  function handleSignOut() {
    signOut();
    navigate('/login');
  }

  const navLink = (to: string, label: string) => {
    const current = path === to || path.startsWith(`${to}/`);
    return (
      <Link
        key={to}
        to={to}
        aria-current={current ? 'page' : undefined}
        className={`rounded-md px-3 py-2 text-sm font-medium ${current ? 'bg-zinc-100 text-zinc-900' : 'text-zinc-700 hover:bg-zinc-100 hover:text-zinc-900'}`}
      >
        {label}
      </Link>
    );
  };

  return (
    <div className="min-h-dvh">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:fixed focus:left-2 focus:top-2 focus:z-50 focus:rounded-md focus:bg-white focus:px-3 focus:py-2 focus:text-sm focus:shadow"
      >
        Skip to content
      </a>
      <ThemeFromPreferences />
      <header className="sticky top-0 z-30 border-b border-zinc-200 bg-white/95 backdrop-blur dark:bg-zinc-100/95">
        <div className="mx-auto flex h-14 max-w-7xl items-center gap-2 px-3 sm:gap-4 sm:px-6">
          <Link to="/projects" className="rounded-md" aria-label="Trellis home">
            <Logo />
          </Link>
          <nav aria-label="Main" className="hidden items-center gap-1 md:flex">
            {NAV.filter((n) => !n.admin || isAdmin).map((n) => navLink(n.to, n.label))}
          </nav>
          <div className="ml-auto flex items-center gap-2">
            <LiveIndicator />
            <button
              type="button"
              onClick={() => setSearchOpen(true)}
              aria-keyshortcuts="/ Control+K"
              className="inline-flex min-h-10 items-center gap-2 rounded-md px-3 text-sm text-zinc-700 ring-1 ring-inset ring-zinc-300 hover:bg-zinc-50 sm:min-w-48"
            >
              <svg aria-hidden="true" viewBox="0 0 20 20" className="size-4 fill-current">
                <path d="M8.5 3a5.5 5.5 0 0 1 4.38 8.82l3.65 3.65-1.06 1.06-3.65-3.65A5.5 5.5 0 1 1 8.5 3Zm0 1.5a4 4 0 1 0 0 8 4 4 0 0 0 0-8Z" />
              </svg>
              <span>Search</span>
              <kbd className="ml-auto hidden rounded border border-zinc-300 px-1.5 text-xs text-zinc-500 sm:inline">/</kbd>
            </button>
            <div className="relative">
              <button
                type="button"
                aria-expanded={menuOpen}
                aria-controls="account-menu"
                onClick={() => setMenuOpen((o) => !o)}
                className="inline-flex min-h-10 items-center gap-2 rounded-md px-2 text-sm font-medium text-zinc-800 hover:bg-zinc-100"
              >
                <span aria-hidden="true" className="grid size-7 place-items-center rounded-full bg-indigo-600 text-xs font-semibold text-white">
                  {session.user.name.trim().charAt(0).toUpperCase() || '?'}
                </span>
                <span className="sr-only">Account menu for </span>
                <span data-testid="user-name" className="hidden max-w-40 truncate sm:inline">
                  {session.user.name}
                </span>
              </button>
              {menuOpen && (
                <div
                  id="account-menu"
                  className="absolute right-0 mt-2 w-60 rounded-lg bg-white p-1 shadow-lg ring-1 ring-zinc-200"
                  onKeyDown={(e) => {
                    if (e.key === 'Escape') setMenuOpen(false);
                  }}
                >
                  <p className="truncate px-3 py-2 text-xs text-zinc-600">{session.user.email}</p>
                  <nav aria-label="Account" className="flex flex-col">
                    {NAV.filter((n) => !n.admin || isAdmin).map((n) => (
                      <Link key={n.to} to={n.to} className="rounded-md px-3 py-2 text-sm text-zinc-800 hover:bg-zinc-100 md:hidden">
                        {n.label}
                      </Link>
                    ))}
                    {ACCOUNT.map((a) => (
                      <Link key={a.to} to={a.to} className="rounded-md px-3 py-2 text-sm text-zinc-800 hover:bg-zinc-100">
                        {a.label}
                      </Link>
                    ))}
                    <button
                      type="button"
                      onClick={handleSignOut}
                      className="rounded-md px-3 py-2 text-left text-sm text-zinc-800 hover:bg-zinc-100"
                    >
                      Sign out
                    </button>
                  </nav>
                </div>
              )}
            </div>
          </div>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-7xl px-3 py-6 sm:px-6 sm:py-8">
        {children}
      </main>
      <SearchDialog open={searchOpen} onClose={() => setSearchOpen(false)} />
    </div>
  );
}
