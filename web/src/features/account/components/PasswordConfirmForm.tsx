// The password re-check (step-up) in front of a sensitive account action (turn off 2FA, delete
// the account, download one's data): the password field, a refused password worded for this
// action, Cancel and a confirm button (red unless told otherwise). The caller supplies the request; the field is selected again after a refusal.
import { useRef, useState, type FormEvent, type ReactNode } from 'react';
import { useMutation } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError } from '@/lib/api';
import { withDetail } from '@/features/auth/errors';
import { PasswordField } from '@/features/auth/components/PasswordField';

type Props = {
  /** What confirming does, above the field. */
  children: ReactNode;
  /** The sentence shown when the server refuses the password (401). */
  refusedDetail: string;
  confirmLabel: string;
  /** The request the password confirms. */
  action: (password: string) => Promise<unknown>;
  /** The confirm button's look: red for destructive actions (the default). */
  confirmVariant?: 'danger' | 'primary';
  onDone: () => void;
  onCancel: () => void;
};

export function PasswordConfirmForm({ children, refusedDetail, confirmLabel, action, onDone, onCancel, confirmVariant = 'danger' }: Props) {
  const [password, setPassword] = useState('');
  const passwordRef = useRef<HTMLInputElement>(null);
  const [localError, setLocalError] = useState<string | null>(null);
  const mutation = useMutation({
    mutationFn: action,
    onSuccess: onDone,
    // The field says what went wrong; focusing it makes screen readers read that out.
    onError: () => setTimeout(() => passwordRef.current?.select(), 0),
  });

  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const fieldError =
    localError ??
    (apiError?.status === 401 ? 'That is not your password.' : (apiError?.fieldErrors.find((f) => f.field === 'password')?.message ?? null));

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (password === '') {
      setLocalError('Enter your password to confirm.');
      passwordRef.current?.focus();
      return;
    }
    setLocalError(null);
    mutation.mutate(password);
  }

  return (
    <form onSubmit={handleSubmit} noValidate className="space-y-4 px-5 pb-5 pt-2">
      <div className="text-sm text-zinc-700">{children}</div>
      <ErrorSummary error={apiError?.status === 401 ? withDetail(apiError, refusedDetail) : mutation.error} />
      <PasswordField inputRef={passwordRef} autoComplete="current-password" value={password} onChange={setPassword} error={fieldError} />
      <div className="flex flex-col-reverse gap-3 sm:flex-row sm:justify-end">
        <Button variant="secondary" onClick={onCancel}>
          Cancel
        </Button>
        <Button variant={confirmVariant} type="submit" busy={mutation.isPending}>
          {confirmLabel}
        </Button>
      </div>
    </form>
  );
}
