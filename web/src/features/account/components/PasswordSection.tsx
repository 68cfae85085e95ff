// "Password": current and new password (with live length feedback) → POST /auth/password/change.
// Every other session of the account ends; this one stays signed in.
import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, splitFieldErrors } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import { PasswordField } from '@/features/auth/components/PasswordField';
import { checkPassword, passwordError } from '@/features/auth/password';
import { changePassword } from '../api';
import { SettingsSection, StatusLine } from './SettingsLayout';

const FIELDS = ['current_password', 'new_password'] as const;
type Field = (typeof FIELDS)[number];

export function PasswordSection() {
  const session = useRequiredSession();
  const queryClient = useQueryClient();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [localErrors, setLocalErrors] = useState<Partial<Record<Field, string>>>({});
  const [status, setStatus] = useState('');

  const mutation = useMutation({
    mutationFn: (input: { current: string; next: string }) => changePassword(session.accessToken, input.current, input.next),
    onSuccess: () => {
      setCurrent('');
      setNext('');
      setStatus('Password changed. Your other sessions have been signed out.');
      void queryClient.invalidateQueries({ queryKey: keys.sessions });
    },
  });

  const serverErrors =
    mutation.error instanceof ApiError ? splitFieldErrors(mutation.error.fieldErrors, FIELDS) : { byField: {}, other: [] };
  const errors: Partial<Record<Field, string>> = { ...serverErrors.byField, ...localErrors };
  const onlyFieldErrors = mutation.error instanceof ApiError && mutation.error.status === 422 && serverErrors.other.length === 0;

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setStatus('');
    const problems: Partial<Record<Field, string>> = {};
    if (current === '') problems.current_password = 'Enter your current password.';
    const nextProblem = passwordError(checkPassword(next));
    if (nextProblem) problems.new_password = nextProblem;
    else if (next === current) problems.new_password = 'Choose a password different from the current one.';
    setLocalErrors(problems);
    if (Object.keys(problems).length > 0) return;
    mutation.mutate({ current, next });
  }

  return (
    <SettingsSection
      id="password-heading"
      title="Password"
      description="Changing your password signs you out on every other device and browser; this one stays signed in."
    >
      <form onSubmit={handleSubmit} noValidate className="max-w-sm space-y-5">
        {!onlyFieldErrors && <ErrorSummary error={mutation.error} otherErrors={serverErrors.other} />}
        {/* For password managers: which account this form belongs to. */}
        <input type="text" name="username" autoComplete="username" value={session.user.email} readOnly hidden />
        <PasswordField
          label="Current password"
          name="current-password"
          autoComplete="current-password"
          value={current}
          onChange={setCurrent}
          error={errors.current_password}
        />
        <PasswordField
          label="New password"
          name="new-password"
          autoComplete="new-password"
          value={next}
          onChange={setNext}
          error={errors.new_password}
        />
        <div className="flex flex-wrap items-center gap-3">
          <Button type="submit" busy={mutation.isPending}>
            {mutation.isPending ? 'Changing…' : 'Change password'}
          </Button>
          <StatusLine>{status}</StatusLine>
        </div>
      </form>
    </SettingsSection>
  );
}
