// The register page: email, name, password → POST /auth/register, then signs
// in with the same credentials and opens the page named by `?next=` (else the projects page).
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
import { login, register } from '../api';
import { withNext } from '../links';
import { checkPassword, passwordError } from '../password';
import { useSession } from '../session';
import { AuthLayout } from './AuthLayout';
import { PasswordField } from './PasswordField';
import type { LoginResult, RegisterInput } from '../types';

const FIELDS = ['email', 'name', 'password'] as const;
type RegisterField = (typeof FIELDS)[number];

/** Thrown when the account was created but the automatic sign-in failed. */
class SignInAfterRegisterError extends Error {
  readonly cause: unknown;
  constructor(cause: unknown) {
    super('Account created, but signing in failed');
    this.cause = cause;
  }
}

async function registerAndSignIn(input: RegisterInput): Promise<LoginResult> {
  await register(input);
  try {
    return await login({ email: input.email, password: input.password });
  } catch (error) {
    throw new SignInAfterRegisterError(error);
  }
}

export function RegisterPage() {
  const headingRef = usePage('Create account');
  const { signIn } = useSession();
  const next = useSearchParams().get('next');
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [localErrors, setLocalErrors] = useState<Partial<Record<RegisterField, string>>>({});

  const mutation = useMutation({
    mutationFn: registerAndSignIn,
    onSuccess: (result) => {
      if (result.kind === 'mfa-required') {
        // A brand-new account has no 2FA; should the server ask anyway, sign-in has the step.
        navigate(withNext('/login', next));
        return;
      }
      signIn(result.session);
      navigate(safeNext(next));
    },
  });

  const error = mutation.error;
  const apiError = error instanceof ApiError ? error : null;
  const serverErrors = apiError ? splitFieldErrors(apiError.fieldErrors, FIELDS) : { byField: {}, other: [] };
  const errors: Partial<Record<RegisterField, string>> = { ...serverErrors.byField, ...localErrors };
  // The server answers a taken address like a new one (it mails the address's owner instead), so
  // there is no "email taken" error to show; a failed sign-in afterwards says what may have happened.

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const problems: Partial<Record<RegisterField, string>> = {};
    const trimmedEmail = email.trim();
    if (trimmedEmail === '') problems.email = 'Enter your email address.';
    else if (!/^[^\s@]+@[^\s@]+$/.test(trimmedEmail)) problems.email = 'Enter an email address like name@example.com.';
    if (name.trim() === '') problems.name = 'Enter your name.';
    const pwError = passwordError(checkPassword(password));
    if (pwError) problems.password = pwError;
    setLocalErrors(problems);
    if (Object.keys(problems).length > 0) return;
    mutation.mutate({ email: trimmedEmail, name: name.trim(), password });
  }

  return (
    <AuthLayout
      title="Create your account"
      subtitle="Projects and tasks for your team."
      headingRef={headingRef}
      footer={
        <>
          Already have an account?{' '}
          <Link to={withNext('/login', next)} className="rounded font-medium text-indigo-700 hover:text-indigo-900">
            Sign in
          </Link>
        </>
      }
    >
      <form onSubmit={handleSubmit} noValidate className="space-y-5">
        {error instanceof SignInAfterRegisterError ? (
          <Alert tone="error" title="Signing in to the new account failed.">
            If this address already had an account, we have emailed its owner instead.{' '}
            <Link to={withNext('/login', next)} className="rounded font-medium underline">
              Go to sign in
            </Link>{' '}
            or{' '}
            <Link to="/forgot-password" className="rounded font-medium underline">
              reset the password
            </Link>
            .
          </Alert>
        ) : (
          <ErrorSummary error={error} otherErrors={serverErrors.other} />
        )}
        <TextField
          label="Email"
          type="email"
          name="email"
          autoComplete="email"
          inputMode="email"
          autoCapitalize="none"
          spellCheck={false}
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={errors.email}
          required
        />
        <TextField
          label="Name"
          type="text"
          name="name"
          autoComplete="name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          error={errors.name}
          required
        />
        <PasswordField autoComplete="new-password" value={password} onChange={setPassword} error={errors.password} />
        <Button type="submit" busy={mutation.isPending} className="w-full">
          {mutation.isPending ? 'Creating account…' : 'Create account'}
        </Button>
      </form>
    </AuthLayout>
  );
}
