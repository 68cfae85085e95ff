// The second step of a sign-in with two-factor authentication: a code from the authenticator
// app (or a recovery code) → POST /auth/login/mfa → a session.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useMutation } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { TextField } from '@/components/ui/Field';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError } from '@/lib/api';
import { loginMfa } from '../api';
import { withDetail } from '../errors';
import { normalizeMfaCode } from '../mfaCode';
import type { Session } from '../types';

export function MfaStep({
  mfaToken,
  onSignedIn,
  onBack,
}: {
  mfaToken: string;
  onSignedIn: (session: Session) => void;
  onBack: () => void;
}) {
  const inputRef = useRef<HTMLInputElement>(null);
  const [code, setCode] = useState('');
  const [localError, setLocalError] = useState<string | null>(null);

  const mutation = useMutation({
    mutationFn: (value: string) => loginMfa(mfaToken, value),
    onSuccess: onSignedIn,
    onError: () => {
      setCode('');
      // After the error is rendered, so the field is read out with it.
      setTimeout(() => inputRef.current?.focus(), 0);
    },
  });

  // The field is what the person needs next: focus it when the step appears.
  useEffect(() => inputRef.current?.focus(), []);

  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  // The server says "invalid credentials" for a wrong code or an expired step: say it plainly.
  const shownError =
    apiError?.status === 401
      ? withDetail(
          apiError,
          'That code did not work. Enter the newest code from your app, or an unused recovery code. If this step has been open for more than 5 minutes, go back and sign in again.',
        )
      : mutation.error;
  const fieldError = localError ?? (apiError?.status === 401 ? 'Check the code and try again.' : null);

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const value = normalizeMfaCode(code);
    if (value === '') {
      setLocalError('Enter the code from your authenticator app, or a recovery code.');
      inputRef.current?.focus();
      return;
    }
    setLocalError(null);
    mutation.mutate(value);
  }

  return (
    <form onSubmit={handleSubmit} noValidate className="space-y-5">
      <ErrorSummary error={shownError} />
      <TextField
        ref={inputRef}
        label="Authentication code"
        name="code"
        autoComplete="one-time-code"
        inputMode="text"
        autoCapitalize="none"
        autoCorrect="off"
        spellCheck={false}
        value={code}
        onChange={(e) => setCode(e.target.value)}
        error={fieldError}
        hint="Lost your phone? Use one of the recovery codes you saved when you turned on two-factor authentication."
        required
      />
      <Button type="submit" busy={mutation.isPending} className="w-full">
        {mutation.isPending ? 'Verifying…' : 'Verify'}
      </Button>
      <Button variant="ghost" className="w-full" onClick={onBack}>
        Use a different account
      </Button>
    </form>
  );
}
