// The sign-in page: email + password → POST /auth/login; with two-factor authentication on, a
// second step asks for the code (MfaStep). Afterwards the page named by `?next=` (same-app paths
// only), else the projects page.
import { useState, type FormEvent } from 'react';
import { useMutation } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { TextField } from '@/components/ui/Field';
import { Alert } from '@/components/ui/Alert';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, splitFieldErrors } from '@/lib/api';
import { safeNext } from '@/app/router';
import { Link, navigate, useSearchParams } from '@/app/router';
import { usePage } from '@/app/usePage';
import { login } from '../api';
import { withNext } from '../links';
import { useSession } from '../session';
import { AuthLayout } from './AuthLayout';
import { MfaStep } from './MfaStep';
import { PasswordField } from './PasswordField';
import type { Credentials, Session } from '../types';

const FIELDS = ['email', 'password'] as const;
type LoginField = (typeof FIELDS)[number];

const LINK = 'rounded font-medium text-indigo-700 hover:text-indigo-900';

export function LoginPage() {
  const { signIn, notice, clearNotice } = useSession();
  const next = useSearchParams().get('next');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [localErrors, setLocalErrors] = useState<Partial<Record<LoginField, string>>>({});
  const [mfaToken, setMfaToken] = useState<string | null>(null);
  const headingRef = usePage(mfaToken ? 'Two-factor authentication' : 'Sign in');

  function finish(session: Session) {
    signIn(session);
    navigate(safeNext(next));
  }

  const mutation = useMutation({
    mutationFn: (credentials: Credentials) => login(credentials),
    onSuccess: (result) => {
      if (result.kind === 'mfa-required') {
        setMfaToken(result.mfaToken);
        return;
      }
      finish(result.session);
    },
  });

  const serverErrors =
    mutation.error instanceof ApiError ? splitFieldErrors(mutation.error.fieldErrors, FIELDS) : { byField: {}, other: [] };
  const errors: Partial<Record<LoginField, string>> = { ...serverErrors.byField, ...localErrors };

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    clearNotice();
    const problems: Partial<Record<LoginField, string>> = {};
    if (email.trim() === '') problems.email = 'Enter your email address.';
    if (password === '') problems.password = 'Enter your password.';
    setLocalErrors(problems);
    if (Object.keys(problems).length > 0) return;
    mutation.mutate({ email: email.trim(), password });
  }

  function backToPassword() {
    setMfaToken(null);
    setPassword('');
    mutation.reset();
    headingRef.current?.focus();
  }

  if (mfaToken !== null) {
    return (
      <AuthLayout
        title="Two-factor authentication"
        subtitle={
          <p>
            Enter the 6-digit code from your authenticator app for <strong className="font-medium text-zinc-800">{email.trim()}</strong>,
            or one of your recovery codes.
          </p>
        }
        headingRef={headingRef}
      >
        <MfaStep mfaToken={mfaToken} onSignedIn={finish} onBack={backToPassword} />
      </AuthLayout>
    );
  }

  return (
    <AuthLayout
      title="Sign in to Trellis"
      subtitle="Welcome back."
      headingRef={headingRef}
      footer={
        <>
          New to Trellis?{' '}
          <Link to={withNext('/register', next)} className={LINK}>
            Create an account
          </Link>
        </>
      }
    >
      <form onSubmit={handleSubmit} noValidate className="space-y-5">
        {notice && <Alert tone="info">{notice}</Alert>}
        <ErrorSummary error={mutation.error} otherErrors={serverErrors.other} />
        <TextField
          label="Email"
          type="email"
          name="email"
          autoComplete="username"
          inputMode="email"
          autoCapitalize="none"
          spellCheck={false}
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={errors.email}
          required
        />
        <div className="space-y-2">
          <PasswordField autoComplete="current-password" value={password} onChange={setPassword} error={errors.password} />
          <p className="text-right text-sm">
            <Link to="/forgot-password" className={LINK}>
              Forgot password?
            </Link>
          </p>
        </div>
        <Button type="submit" busy={mutation.isPending} className="w-full">
          {mutation.isPending ? 'Signing in…' : 'Sign in'}
        </Button>
      </form>
    </AuthLayout>
  );
}
