// The register page: email, name, password → POST /auth/register, then signs
// in with the same credentials and opens the projects page.
import { useState, type FormEvent } from 'react';
import { useMutation } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { TextField } from '@/components/ui/Field';
import { Alert } from '@/components/ui/Alert';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, splitFieldErrors } from '@/lib/api';
import { Link, navigate } from '@/app/router';
import { usePage } from '@/app/usePage';
import { login, register } from '../api';
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
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [localErrors, setLocalErrors] = useState<Partial<Record<RegisterField, string>>>({});
  const [mfaRequired, setMfaRequired] = useState(false);

  const mutation = useMutation({
    mutationFn: registerAndSignIn,
    onSuccess: (result) => {
      if (result.kind === 'mfa-required') {
        setMfaRequired(true);
        return;
      }
      signIn(result.session);
      navigate('/projects');
    },
  });

  const error = mutation.error;
  const apiError = error instanceof ApiError ? error : null;
  const serverErrors = apiError ? splitFieldErrors(apiError.fieldErrors, FIELDS) : { byField: {}, other: [] };
  const errors: Partial<Record<RegisterField, string>> = { ...serverErrors.byField, ...localErrors };
  if (apiError?.status === 409 && !errors.email) {
    errors.email = 'Use another email, or sign in to the existing account.';
  }

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setMfaRequired(false);
    const next: Partial<Record<RegisterField, string>> = {};
    const trimmedEmail = email.trim();
    if (trimmedEmail === '') next.email = 'Enter your email address.';
    else if (!/^[^\s@]+@[^\s@]+$/.test(trimmedEmail)) next.email = 'Enter an email address like name@example.com.';
    if (name.trim() === '') next.name = 'Enter your name.';
    const pwError = passwordError(checkPassword(password));
    if (pwError) next.password = pwError;
    setLocalErrors(next);
    if (Object.keys(next).length > 0) return;
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
          <Link to="/login" className="rounded font-medium text-indigo-700 hover:text-indigo-900">
            Sign in
          </Link>
        </>
      }
    >
      <form onSubmit={handleSubmit} noValidate className="space-y-5">
        {mfaRequired && (
          <Alert tone="info" title="Account created">
            This account uses two-factor authentication. Two-factor sign-in comes in a later version of this page.
          </Alert>
        )}
        {error instanceof SignInAfterRegisterError ? (
          <Alert tone="error" title="Your account was created, but signing in failed.">
            <Link to="/login" className="rounded font-medium underline">
              Go to sign in
            </Link>
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
