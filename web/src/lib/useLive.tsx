// React glue for live updates: one LiveConnection per signed-in session, and the hook a page
// uses to follow a project: it invalidates the queries an event makes stale and hands the
// event on (e.g. to highlight the card another person just moved).
import { createContext, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useSession } from '@/features/auth/session';
import { renewAccessToken } from './api';
import { LiveConnection, removesUser, staleKeys, type LiveMessage, type LiveStatus } from './live';
import { keys } from './queryKeys';

const LiveContext = createContext<LiveConnection | null>(null);

export function LiveProvider({ children }: { children: ReactNode }) {
  const { session } = useSession();
  const tokenRef = useRef<string | null>(null);
  tokenRef.current = session?.accessToken ?? null;
  const userId = session?.user.id ?? null;
  const [connection, setConnection] = useState<LiveConnection | null>(null);

  useEffect(() => {
    if (!userId) return;
    const conn = new LiveConnection(() => tokenRef.current, renewAccessToken);
    setConnection(conn);
    return () => {
      conn.close();
      setConnection(null);
    };
  }, [userId]);

  // A renewed access token extends the open connection's session.
  const token = session?.accessToken;
  useEffect(() => {
    if (connection && token) connection.updateToken(token);
  }, [connection, token]);

  return <LiveContext.Provider value={connection}>{children}</LiveContext.Provider>;
}

/**
 * Follows `projectId` while mounted: stale queries are invalidated, a `resync` refetches the
 * whole project (an `unsubscribed` one refetches nothing: it could only fail), and every message
 * also reaches `onMessage`.
 */
export function useLiveProject(projectId: string | null, onMessage?: (message: LiveMessage) => void): void {
  const connection = useContext(LiveContext);
  const queryClient = useQueryClient();
  const { session } = useSession();
  const userRef = useRef(session?.user.id ?? null);
  userRef.current = session?.user.id ?? null;
  const handler = useRef(onMessage);
  handler.current = onMessage;

  useEffect(() => {
    if (!connection || !projectId) return;
    return connection.subscribe(projectId, (message) => {
      if (message.kind === 'event') {
        // The event that removed the caller: whatever it names can only answer 404 now.
        if (!removesUser(message.event, userRef.current)) {
          for (const key of staleKeys(message.event)) void queryClient.invalidateQueries({ queryKey: key });
        }
      } else if (message.kind === 'resync') {
        for (const key of [keys.project(projectId), keys.tasks(projectId), keys.members(projectId)]) {
          void queryClient.invalidateQueries({ queryKey: key });
        }
        void queryClient.invalidateQueries({ queryKey: ['task'] });
        void queryClient.invalidateQueries({ queryKey: ['comments'] });
      }
      handler.current?.(message);
    });
  }, [connection, projectId, queryClient]);
}

/** The connection's state, for a "live / reconnecting" indicator. */
export function useLiveStatus(): LiveStatus {
  const connection = useContext(LiveContext);
  const [status, setStatus] = useState<LiveStatus>('idle');
  useEffect(() => (connection ? connection.onStatus(setStatus) : undefined), [connection]);
  return status;
}
