// The signed-in session: the access token in React state only (never in web storage), the
// refresh token in the server's HttpOnly `__Host-` cookie. On start the app tries a silent
// refresh (a reload keeps you signed in); while signed in it refreshes a minute before expiry,
// and any request refused with 401 gets one refresh-and-retry before the session is given up.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { setTokenRefresher, setUnauthorizedHandler } from '@/lib/api';
import { logout, refreshSession } from './api';
import type { Session, User } from './types';

/** `serverEnded`: the server has already ended the session, so no logout request is sent. */
export type SignOutOptions = { serverEnded?: boolean };

/** `loading` until the first silent refresh has answered. */
export type SessionStatus = 'loading' | 'ready';

type SessionContextValue = {
  status: SessionStatus;
  session: Session | null;
  /** A message for the sign-in page, e.g. after the session expired. */
  notice: string | null;
  signIn: (session: Session) => void;
  /**
   * Forgets the session here and, unless the server already ended it (after "sign out
   * everywhere" or erasing the account), ends it on the server too.
   */
  signOut: (options?: SignOutOptions) => void;
  /** Replaces the signed-in user's details (after a profile change). */
  updateUser: (user: User) => void;
  clearNotice: () => void;
  setNotice: (notice: string | null) => void;
};

const SessionContext = createContext<SessionContextValue | null>(null);

/**
 * Whether the server set the session hint cookie (script-readable, no secret) beside the
 * HttpOnly refresh cookie: only then is a silent refresh worth a request.
 */
export function hasSessionHint(cookie: string): boolean {
  return cookie.split(';').some((c) => c.trim() === '__Host-trellis-session=1');
}

/** Milliseconds before expiry at which the access token is renewed. */
export const REFRESH_AHEAD_MS = 60_000;

/** When to renew a token that expires at `expiresAt` (never sooner than 5 s from now). */
export function refreshDelay(expiresAt: number, now: number = Date.now()): number {
  return Math.max(5_000, expiresAt - now - REFRESH_AHEAD_MS);
}

/**
 * Makes concurrent callers share one refresh: the server rotates the refresh token on every
 * use, so two refreshes at once would spend the same cookie twice.
 */
export function singleFlight<T>(fn: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | null = null;
  return () => {
    inFlight ??= fn().finally(() => {
      inFlight = null;
    });
    return inFlight;
  };
}

/**
 * Runs `fn` while holding the browser-wide refresh lock (Web Locks API), so tabs of one browser
 * refresh one after another: each then presents the cookie the previous one rotated, never the
 * same one twice (which the server takes for token theft). Without the API, runs it as is.
 */
export function acrossTabs<T>(fn: () => Promise<T>, locks: LockManager | undefined = globalThis.navigator?.locks): Promise<T> {
  return locks ? (locks.request('trellis-refresh', fn) as Promise<T>) : fn();
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [status, setStatus] = useState<SessionStatus>('loading');
  const [session, setSession] = useState<Session | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const sessionRef = useRef<Session | null>(null);
  sessionRef.current = session;

  const forget = useCallback(() => {
    setSession(null);
    queryClient.clear();
  }, [queryClient]);

  // One refresh at a time; a 401 may be another tab's race (the cookie was just rotated), so
  // one retry after a pause before giving up.
  const refresh = useMemo(
    () =>
      singleFlight(async (): Promise<Session | null> => {
        let next = await acrossTabs(refreshSession);
        if (next === null && sessionRef.current !== null) {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          next = await acrossTabs(refreshSession);
        }
        setSession(next);
        return next;
      }),
    [],
  );

  // The first silent refresh decides whether the person is still signed in.
  useEffect(() => {
    let cancelled = false;
    if (!hasSessionHint(document.cookie)) {
      setStatus('ready');
      return;
    }
    refresh()
      .catch(() => null)
      .finally(() => {
        if (!cancelled) setStatus('ready');
      });
    return () => {
      cancelled = true;
    };
  }, [refresh]);

  // Renew ahead of expiry while signed in.
  useEffect(() => {
    if (!session) return;
    const timer = setTimeout(() => void refresh().catch(() => undefined), refreshDelay(session.expiresAt));
    return () => clearTimeout(timer);
  }, [session, refresh]);

  useEffect(() => {
    setTokenRefresher(async () => (await refresh().catch(() => null))?.accessToken ?? null);
    setUnauthorizedHandler(() => {
      setNotice('Your session has ended. Please sign in again.');
      forget();
    });
    return () => {
      setTokenRefresher(null);
      setUnauthorizedHandler(null);
    };
  }, [forget, refresh]);

  const signIn = useCallback((next: Session) => {
    setNotice(null);
    setSession(next);
    setStatus('ready');
  }, []);

  // Ends the session on the server (its tokens and the cookie stop working at once) and forgets
  // the tokens here, whether or not the server could be reached. (Tolerates being passed
  // straight to onClick: an event has no `serverEnded`.)
  const signOut = useCallback((options?: SignOutOptions) => {
    if (sessionRef.current && options?.serverEnded !== true) void logout(sessionRef.current.accessToken);
    forget();
  }, [forget]);

  const updateUser = useCallback((user: User) => {
    setSession((current) => (current ? { ...current, user } : current));
  }, []);

  const clearNotice = useCallback(() => setNotice(null), []);

  const value = useMemo(
    () => ({ status, session, notice, signIn, signOut, updateUser, clearNotice, setNotice }),
    [status, session, notice, signIn, signOut, updateUser, clearNotice],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionContextValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession must be used inside <SessionProvider>');
  return value;
}

/** The session on pages that are only shown when signed in. */
export function useRequiredSession(): Session {
  const { session } = useSession();
  if (!session) throw new Error('This page needs a signed-in session');
  return session;
}
