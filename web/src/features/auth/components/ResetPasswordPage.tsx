// Choose a new password from a mailed link (`/reset-password#token=…`): the new password with
// live length feedback → POST /auth/password/reset → 204. Every session of the account ends, so
// the page ends with a way to sign in. A missing, used or expired token gets a clear way out.
import { useRef, useState, type FormEvent } from 'react';
import { flushSync } from 'react-dom';
import { useMutation } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { Alert } from '@/components/ui/Alert';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, splitFieldErrors } from '@/lib/api';
import { Link, navigate, useHash } from '@/app/router';
import { usePage } from '@/app/usePage';
import { resetPassword } from '../api';
import { parseFragmentToken } from '../fragment';
import { checkPassword, passwordError } from '../password';
import { useSession } from '../session';
import { AuthLayout } from './AuthLayout';
import { PasswordField } from './PasswordField';

const LINK = 'rounded font-medium text-indigo-700 hover:text-indigo-900';

export function ResetPasswordPage() {
  const token = parseFragmentToken(useHash());
  // A new link opened in the same tab starts afresh.
  return <ResetPassword key={token ?? ''} token={token} />;
}

function ResetPassword({ token }: { token: string | null }) {
  const { session, signOut } = useSession();
  const [password, setPassword] = useState('');
  const [localError, setLocalError] = useState<string | null>(null);
  const formRef = useRef<HTMLFormElement>(null);

  const mutation = useMutation({
    mutationFn: (newPassword: string) => resetPassword(token ?? '', newPassword),
  });
  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const badToken = token === null || apiError?.status === 400;
  const title = mutation.isSuccess ? 'Password changed' : badToken ? 'This link does not work' : 'Choose a new password';
  const headingRef = usePage(title);

  const serverErrors = apiError ? splitFieldErrors(apiError.fieldErrors, ['new_password', 'password'] as const) : { byField: {}, other: [] };
  const fieldError = localError ?? serverErrors.byField.new_password ?? serverErrors.byField.password;

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const problem = passwordError(checkPassword(password));
    setLocalError(problem);
    if (problem) {
      formRef.current?.querySelector<HTMLInputElement>('input[name="new-password"]')?.focus();
      return;
    }
    mutation.mutate(password);
  }

  // Signed in here (the link was opened in a signed-in tab): the reset may have ended this very
  // session, so signing in again starts from a clean slate.
  function goToSignIn() {
    flushSync(() => {
      signOut();
      navigate('/login');
    });
  }

  const signInLink = session ? (
    <Button className="w-full" onClick={goToSignIn}>
      Sign in with your new password
    </Button>
  ) : (
    <Link
      to="/login"
      className="inline-flex min-h-10 w-full items-center justify-center rounded-md bg-indigo-600 px-4 text-sm font-medium text-white shadow-sm hover:bg-indigo-700"
    >
      Sign in with your new password
    </Link>
  );

  if (mutation.isSuccess) {
    return (
      <AuthLayout title={title} headingRef={headingRef}>
        <div role="status" className="space-y-3 text-sm text-zinc-700">
          <p>Your new password is set.</p>
          <p>For your security, every session of the account has been signed out, on every device.</p>
        </div>
        <div className="mt-6">{signInLink}</div>
      </AuthLayout>
    );
  }

  if (badToken) {
    return (
      <AuthLayout
        title={title}
        headingRef={headingRef}
        footer={
          <Link to={session ? '/projects' : '/login'} className={LINK}>
            {session ? 'Back to your projects' : 'Back to sign in'}
          </Link>
        }
      >
        <Alert tone="error" title={token === null ? 'The link is incomplete.' : 'The link is invalid, already used or expired.'}>
          <p>
            Reset links work once and only for a limited time.
            {token === null && ' Make sure you opened the whole link from the email.'}
          </p>
        </Alert>
        <Link
          to={session ? '/settings/security' : '/forgot-password'}
          className="mt-6 inline-flex min-h-10 w-full items-center justify-center rounded-md bg-indigo-600 px-4 text-sm font-medium text-white shadow-sm hover:bg-indigo-700"
        >
          {session ? 'Change your password in Security' : 'Request a new link'}
        </Link>
      </AuthLayout>
    );
  }

  return (
    <AuthLayout title={title} subtitle="Pick a password you do not use anywhere else." headingRef={headingRef}>
      <form ref={formRef} onSubmit={handleSubmit} noValidate className="space-y-5">
        <ErrorSummary error={mutation.error} otherErrors={serverErrors.other} />
        <PasswordField
          label="New password"
          name="new-password"
          autoComplete="new-password"
          value={password}
          onChange={setPassword}
          error={fieldError}
        />
        <Button type="submit" busy={mutation.isPending} className="w-full">
          {mutation.isPending ? 'Saving…' : 'Set new password'}
        </Button>
      </form>
    </AuthLayout>
  );
}
