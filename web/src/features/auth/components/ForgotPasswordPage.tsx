// "Forgot password?": an email → POST /auth/password/forgot (202 whatever the email), then the
// same confirmation every time, so the page never tells whether an account exists.
import { useRef, useState, type FormEvent } from 'react';
import { useMutation } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { TextField } from '@/components/ui/Field';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, splitFieldErrors } from '@/lib/api';
import { Link } from '@/app/router';
import { usePage } from '@/app/usePage';
import { forgotPassword } from '../api';
import { AuthLayout } from './AuthLayout';

const LINK = 'rounded font-medium text-indigo-700 hover:text-indigo-900';

export function ForgotPasswordPage() {
  const headingRef = usePage('Reset your password');
  const emailRef = useRef<HTMLInputElement>(null);
  const [email, setEmail] = useState('');
  const [localError, setLocalError] = useState<string | null>(null);
  const [sentTo, setSentTo] = useState<string | null>(null);

  const mutation = useMutation({
    mutationFn: forgotPassword,
    onSuccess: (_data, sent) => setSentTo(sent),
  });

  const serverErrors =
    mutation.error instanceof ApiError ? splitFieldErrors(mutation.error.fieldErrors, ['email'] as const) : { byField: {}, other: [] };
  const emailError = localError ?? serverErrors.byField.email;

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const trimmed = email.trim();
    if (trimmed === '') {
      setLocalError('Enter the email address of your account.');
      emailRef.current?.focus();
      return;
    }
    setLocalError(null);
    mutation.mutate(trimmed);
  }

  const footer = (
    <Link to="/login" className={LINK}>
      Back to sign in
    </Link>
  );

  if (sentTo !== null) {
    return (
      <AuthLayout title="Check your email" headingRef={headingRef} footer={footer}>
        <div role="status" className="space-y-3 text-sm text-zinc-700">
          <p>
            If an account uses <strong className="font-medium text-zinc-900">{sentTo}</strong>, we have sent it a link to
            choose a new password. The link works once, for a limited time.
          </p>
          <p>No email after a few minutes? Check your spam folder, or make sure you typed the address you signed up with.</p>
        </div>
        <Button
          variant="secondary"
          className="mt-6 w-full"
          onClick={() => {
            setSentTo(null);
            mutation.reset();
          }}
        >
          Use another email address
        </Button>
      </AuthLayout>
    );
  }

  return (
    <AuthLayout
      title="Reset your password"
      subtitle="Enter the email address of your account and we will send you a link to choose a new password."
      headingRef={headingRef}
      footer={footer}
    >
      <form onSubmit={handleSubmit} noValidate className="space-y-5">
        <ErrorSummary error={mutation.error} otherErrors={serverErrors.other} />
        <TextField
          ref={emailRef}
          label="Email"
          type="email"
          name="email"
          autoComplete="username"
          inputMode="email"
          autoCapitalize="none"
          spellCheck={false}
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={emailError}
          required
        />
        <Button type="submit" busy={mutation.isPending} className="w-full">
          {mutation.isPending ? 'Sending…' : 'Send reset link'}
        </Button>
      </form>
    </AuthLayout>
  );
}
