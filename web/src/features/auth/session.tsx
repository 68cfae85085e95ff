// The signed-in session, held in React state only (never in localStorage or
// sessionStorage): a reload signs the person out.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { setUnauthorizedHandler } from '@/lib/api';
import { logout } from './api';
import type { Session } from './types';

type SessionContextValue = {
  session: Session | null;
  /** A message for the sign-in page, e.g. after the session expired. */
  notice: string | null;
  signIn: (session: Session) => void;
  signOut: () => void;
  clearNotice: () => void;
};

const SessionContext = createContext<SessionContextValue | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [session, setSession] = useState<Session | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const forget = useCallback(() => {
    setSession(null);
    queryClient.clear();
  }, [queryClient]);

  const signIn = useCallback((next: Session) => {
    setNotice(null);
    setSession(next);
  }, []);

  // Ends the session on the server (its access and refresh tokens stop working at once) and
  // forgets the tokens here, whether or not the server could be reached.
  const signOut = useCallback(() => {
    if (session) void logout(session.accessToken);
    forget();
  }, [session, forget]);

  const clearNotice = useCallback(() => setNotice(null), []);

  // Any authenticated request answered 401 means the session is over.
  useEffect(() => {
    setUnauthorizedHandler(() => {
      setNotice('Your session has ended. Please sign in again.');
      forget();
    });
    return () => setUnauthorizedHandler(null);
  }, [forget]);

  const value = useMemo(
    () => ({ session, notice, signIn, signOut, clearNotice }),
    [session, notice, signIn, signOut, clearNotice],
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
