// A tiny client-side router: the current path (and query) as React state, path patterns with
// parameters, navigate(), <Link>.
import { useEffect, useMemo, useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from 'react';

const listeners = new Set<() => void>();
let navigatedInApp = false;

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener('popstate', listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('popstate', listener);
  };
}

/** Normalises a path: no trailing slash (except "/"), no query or hash. */
export function normalizePath(path: string): string {
  const bare = path.split(/[?#]/, 1)[0] || '/';
  const trimmed = bare.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const { pathname, search, hash } = window.location;
  if (isSameLocation(to, `${pathname}${search}${hash}`) && !options.replace) return;
  navigatedInApp = true;
  if (options.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  listeners.forEach((listener) => listener());
}

/** Whether `to` names the location `current` (paths normalised; query and fragment must match). */
export function isSameLocation(to: string, current: string): boolean {
  const rest = (l: string) => l.slice(l.split(/[?#]/, 1)[0]?.length ?? 0);
  return normalizePath(to) === normalizePath(current) && rest(to) === rest(current);
}

/** True once the person has moved between pages (so pages may move focus). */
export function hasNavigated(): boolean {
  return navigatedInApp;
}

export function usePathname(): string {
  const raw = useSyncExternalStore(subscribe, () => window.location.pathname);
  return normalizePath(raw);
}

/** The query string's parameters (`?a=1&b=2`), as React state. */
export function useSearchParams(): URLSearchParams {
  const search = useSyncExternalStore(subscribe, () => window.location.search);
  return useMemo(() => new URLSearchParams(search), [search]);
}

/** The fragment without `#` (links in mails carry tokens there, out of server logs). */
export function useHash(): string {
  return useSyncExternalStore(subscribe, () => window.location.hash.replace(/^#/, ''));
}

/** Replaces the query string without a new history entry (filters, sorting, paging). */
export function setSearchParams(params: URLSearchParams | Record<string, string | undefined>): void {
  const next =
    params instanceof URLSearchParams
      ? params
      : new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
  const query = next.toString();
  const url = `${window.location.pathname}${query ? `?${query}` : ''}`;
  if (url === `${window.location.pathname}${window.location.search}`) return;
  window.history.replaceState(null, '', url);
  listeners.forEach((listener) => listener());
}

/**
 * Matches a path against a pattern such as `/projects/:id/tasks/:taskId`; the parameters
 * (URI-decoded) or null. Segments must match one for one.
 */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const want = normalizePath(pattern).split('/');
  const got = normalizePath(path).split('/');
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i] ?? '';
    const g = got[i] ?? '';
    if (w.startsWith(':')) {
      if (g === '') return null;
      try {
        params[w.slice(1)] = decodeURIComponent(g);
      } catch {
        return null;
      }
    } else if (w !== g) {
      return null;
    }
  }
  return params;
}

/** Sends the browser elsewhere as soon as it renders (for route guards). */
export function Redirect({ to }: { to: string }) {
  useEffect(() => {
    navigate(to, { replace: true });
  }, [to]);
  return null;
}

type LinkProps = AnchorHTMLAttributes<HTMLAnchorElement> & { to: string };

/** A real link (works with middle-click, copy link, etc.) that navigates in-app on a plain click. */
export function Link({ to, onClick, ...rest }: LinkProps) {
  function handleClick(event: MouseEvent<HTMLAnchorElement>) {
    onClick?.(event);
    if (
      event.defaultPrevented ||
      event.button !== 0 ||
      event.metaKey ||
      event.ctrlKey ||
      event.shiftKey ||
      event.altKey
    ) {
      return;
    }
    event.preventDefault();
    navigate(to);
  }
  return <a href={to} onClick={handleClick} {...rest} />;
}

/** Where the sign-in page sends the person afterwards: a same-app path only. */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/projects';
}
