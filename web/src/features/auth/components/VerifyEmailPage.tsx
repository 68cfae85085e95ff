// Confirms an email address from a mailed link (`/verify-email#token=…`): POSTs the token to
// /auth/email/verify once on load and shows the outcome. Works signed out, and signed in
// inside the app shell (then the session's user is refreshed to show "verified").
import { useEffect, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { Alert } from '@/components/ui/Alert';
import { Spinner } from '@/components/ui/Spinner';
import { ApiError, errorMessage } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { Link, useHash } from '@/app/router';
import { usePage } from '@/app/usePage';
import { getMe } from '@/features/account/api';
import { verifyEmail } from '../api';
import { parseFragmentToken } from '../fragment';
import { useSession } from '../session';
import { verifyOnce } from '../verifyOnce';
import { AuthLayout } from './AuthLayout';

type State = { kind: 'missing' } | { kind: 'verifying' } | { kind: 'verified' } | { kind: 'failed'; error: unknown };

const BUTTON_LINK =
  'inline-flex min-h-10 w-full items-center justify-center rounded-md bg-indigo-600 px-4 text-sm font-medium text-white shadow-sm hover:bg-indigo-700';

export function VerifyEmailPage() {
  const token = parseFragmentToken(useHash());
  const { session, updateUser } = useSession();
  const queryClient = useQueryClient();
  const [state, setState] = useState<State>(token ? { kind: 'verifying' } : { kind: 'missing' });
  const accessToken = session?.accessToken ?? null;

  useEffect(() => {
    if (!token) {
      setState({ kind: 'missing' });
      return;
    }
    let cancelled = false;
    setState({ kind: 'verifying' });
    verifyOnce(token, verifyEmail).then(
      () => {
        if (!cancelled) setState({ kind: 'verified' });
      },
      (error: unknown) => {
        if (!cancelled) setState({ kind: 'failed', error });
      },
    );
    return () => {
      cancelled = true;
    };
  }, [token]);

  // Signed in: show the new "verified" state everywhere (account menu, profile page).
  useEffect(() => {
    if (state.kind !== 'verified' || !accessToken) return;
    let cancelled = false;
    getMe(accessToken)
      .then((me) => {
        if (cancelled) return;
        updateUser(me.user);
        void queryClient.invalidateQueries({ queryKey: keys.me });
      })
      .catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, [state.kind, accessToken, updateUser, queryClient]);

  const title =
    state.kind === 'verified' ? 'Email address verified' : state.kind === 'verifying' ? 'Verifying your email…' : 'This link does not work';
  const headingRef = usePage(title);

  const next = session ? (
    <Link to="/projects" className={BUTTON_LINK}>
      Go to your projects
    </Link>
  ) : (
    <Link to="/login" className={BUTTON_LINK}>
      Sign in
    </Link>
  );

  return (
    <AuthLayout title={title} headingRef={headingRef}>
      {state.kind === 'verifying' && <Spinner label="Checking the link…" />}
      {state.kind === 'verified' && (
        <>
          <p role="status" className="text-sm text-zinc-700">
            Thank you: your email address is confirmed.
          </p>
          <div className="mt-6">{next}</div>
        </>
      )}
      {(state.kind === 'missing' || state.kind === 'failed') && (
        <>
          <Alert
            tone="error"
            title={
              state.kind === 'missing'
                ? 'The link is incomplete.'
                : state.error instanceof ApiError && state.error.status === 400
                  ? 'The link is invalid, already used or expired.'
                  : errorMessage(state.error)
            }
          >
            <p>
              {state.kind === 'missing' && 'Make sure you opened the whole link from the email. '}
              Verification links work once, for 24 hours.{' '}
              {session
                ? 'You can send yourself a new one from your profile.'
                : 'Sign in and send yourself a new one from your profile.'}
            </p>
          </Alert>
          {session?.user.email_verified === true && (
            <p className="mt-4 text-sm text-zinc-700">
              Your address {session.user.email} is already verified: there is nothing more to do.
            </p>
          )}
          <div className="mt-6">
            {session ? (
              <Link to="/settings/profile" className={BUTTON_LINK}>
                Go to your profile
              </Link>
            ) : (
              <Link to="/login?next=%2Fsettings%2Fprofile" className={BUTTON_LINK}>
                Sign in
              </Link>
            )}
          </div>
        </>
      )}
    </AuthLayout>
  );
}
