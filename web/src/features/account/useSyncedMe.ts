// The caller's profile from the server, kept in step with the session's copy of the user (the
// account menu and other pages read that one), e.g. after 2FA or email verification changed.
import { useEffect } from 'react';
import { useRequiredSession, useSession } from '@/features/auth/session';
import { useMe } from './api';
import { userChanged } from './profile';

export function useSyncedMe() {
  const me = useMe();
  const session = useRequiredSession();
  const { updateUser } = useSession();
  const fresh = me.data?.user;
  useEffect(() => {
    if (fresh && userChanged(session.user, fresh)) updateUser(fresh);
  }, [fresh, session.user, updateUser]);
  return me;
}
