// A tiny client-side router: the current path as React state, navigate(), <Link>.
import { useEffect, useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from 'react';

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
  if (normalizePath(to) === normalizePath(window.location.pathname) && !options.replace) return;
  navigatedInApp = true;
  if (options.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  listeners.forEach((listener) => listener());
}

/** True once the person has moved between pages (so pages may move focus). */
export function hasNavigated(): boolean {
  return navigatedInApp;
}

export function usePathname(): string {
  const raw = useSyncExternalStore(subscribe, () => window.location.pathname);
  return normalizePath(raw);
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
