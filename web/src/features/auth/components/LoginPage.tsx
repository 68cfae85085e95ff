// The sign-in page: email + password → POST /auth/login, then the projects page.
import { useState, type FormEvent } from 'react';
import { useMutation } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { TextField } from '@/components/ui/Field';
import { Alert } from '@/components/ui/Alert';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, splitFieldErrors } from '@/lib/api';
import { Link, navigate } from '@/app/router';
import { usePage } from '@/app/usePage';
import { login } from '../api';
import { useSession } from '../session';
import { AuthLayout } from './AuthLayout';
import { PasswordField } from './PasswordField';
import type { Credentials } from '../types';

const FIELDS = ['email', 'password'] as const;
type LoginField = (typeof FIELDS)[number];

export function LoginPage() {
  const headingRef = usePage('Sign in');
  const { signIn, notice, clearNotice } = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [localErrors, setLocalErrors] = useState<Partial<Record<LoginField, string>>>({});
  const [mfaRequired, setMfaRequired] = useState(false);

  const mutation = useMutation({
    mutationFn: (credentials: Credentials) => login(credentials),
    onSuccess: (result) => {
      if (result.kind === 'mfa-required') {
        setMfaRequired(true);
        return;
      }
      signIn(result.session);
      navigate('/projects');
    },
  });

  const serverErrors =
    mutation.error instanceof ApiError ? splitFieldErrors(mutation.error.fieldErrors, FIELDS) : { byField: {}, other: [] };
  const errors: Partial<Record<LoginField, string>> = { ...serverErrors.byField, ...localErrors };

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    clearNotice();
    setMfaRequired(false);
    const next: Partial<Record<LoginField, string>> = {};
    if (email.trim() === '') next.email = 'Enter your email address.';
    if (password === '') next.password = 'Enter your password.';
    setLocalErrors(next);
    if (Object.keys(next).length > 0) return;
    mutation.mutate({ email: email.trim(), password });
  }

  return (
    <AuthLayout
      title="Sign in to Trellis"
      subtitle="Welcome back."
      headingRef={headingRef}
      footer={
        <>
          New to Trellis?{' '}
          <Link to="/register" className="rounded font-medium text-indigo-700 hover:text-indigo-900">
            Create an account
          </Link>
        </>
      }
    >
      <form onSubmit={handleSubmit} noValidate className="space-y-5">
        {notice && <Alert tone="info">{notice}</Alert>}
        {mfaRequired && (
          <Alert tone="info" title="Two-factor sign-in needed">
            This account uses two-factor authentication. Two-factor sign-in comes in a later version of this page.
          </Alert>
        )}
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
        <PasswordField autoComplete="current-password" value={password} onChange={setPassword} error={errors.password} />
        <Button type="submit" busy={mutation.isPending} className="w-full">
          {mutation.isPending ? 'Signing in…' : 'Sign in'}
        </Button>
      </form>
    </AuthLayout>
  );
}

