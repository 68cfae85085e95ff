// The two links of an email change (issue 16): `/confirm-email#token=…`, mailed to the new
// address, applies the change; `/undo-email-change#token=…`, mailed to the old address afterwards,
// restores it and signs the account out everywhere (this browser too). Each POSTs its token once
// on load and shows the outcome; both work signed out.
import { useEffect, useState } from 'react';
import { Alert } from '@/components/ui/Alert';
import { Spinner } from '@/components/ui/Spinner';
import { ApiError, errorMessage } from '@/lib/api';
import { Link, useHash } from '@/app/router';
import { usePage } from '@/app/usePage';
import { confirmEmailChange, undoEmailChange } from '../api';
import { parseFragmentToken } from '../fragment';
import { useSession } from '../session';
import { verifyOnce } from '../verifyOnce';
import { AuthLayout } from './AuthLayout';

type Kind = 'confirm' | 'undo';
type State = { kind: 'missing' } | { kind: 'working' } | { kind: 'done' } | { kind: 'failed'; error: unknown };

const BUTTON_LINK =
  'inline-flex min-h-10 w-full items-center justify-center rounded-md bg-indigo-600 px-4 text-sm font-medium text-white shadow-sm hover:bg-indigo-700';

const TEXT: Record<Kind, { working: string; done: string; doneBody: string; expiry: string }> = {
  confirm: {
    working: 'Changing your email…',
    done: 'Email address changed',
    doneBody: 'Your account now uses this address, and it is verified. Your previous address was told about the change.',
    expiry: 'Email change links work once, for 24 hours. Ask for the change again from your profile.',
  },
  undo: {
    working: 'Restoring your email…',
    done: 'Email address restored',
    doneBody:
      'Your account uses this address again, and it was signed out everywhere. Sign in, then choose a new password if you did not make the change.',
    expiry: 'Undo links work once, for 7 days.',
  },
};

export function EmailChangePage({ kind }: { kind: Kind }) {
  const token = parseFragmentToken(useHash());
  const { session, signOut } = useSession();
  const [state, setState] = useState<State>(token ? { kind: 'working' } : { kind: 'missing' });
  const text = TEXT[kind];

  useEffect(() => {
    if (!token) {
      setState({ kind: 'missing' });
      return;
    }
    let cancelled = false;
    setState({ kind: 'working' });
    verifyOnce(token, kind === 'confirm' ? confirmEmailChange : undoEmailChange).then(
      () => {
        if (!cancelled) setState({ kind: 'done' });
      },
      (error: unknown) => {
        if (!cancelled) setState({ kind: 'failed', error });
      },
    );
    return () => {
      cancelled = true;
    };
  }, [token, kind]);

  // An undo ended every session, this browser's included.
  useEffect(() => {
    if (state.kind === 'done' && kind === 'undo' && session) signOut({ serverEnded: true });
  }, [state.kind, kind, session, signOut]);

  const title = state.kind === 'done' ? text.done : state.kind === 'working' ? text.working : 'This link does not work';
  const headingRef = usePage(title);
  const next =
    session && kind === 'confirm' ? (
      <Link to="/settings/profile" className={BUTTON_LINK}>
        Go to your profile
      </Link>
    ) : (
      <Link to="/login" className={BUTTON_LINK}>
        Sign in
      </Link>
    );

  return (
    <AuthLayout title={title} headingRef={headingRef}>
      {state.kind === 'working' && <Spinner label="Checking the link…" />}
      {state.kind === 'done' && (
        <>
          <p role="status" className="text-sm text-zinc-700">
            {text.doneBody}
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
                  : state.error instanceof ApiError && state.error.status === 409
                    ? 'That address is now used by another account: nothing was changed.'
                    : errorMessage(state.error)
            }
          >
            <p>
              {state.kind === 'missing' && 'Make sure you opened the whole link from the email. '}
              {text.expiry}
            </p>
          </Alert>
          <div className="mt-6">{next}</div>
        </>
      )}
    </AuthLayout>
  );
}
