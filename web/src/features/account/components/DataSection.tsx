// "Your data" (download everything held about you, GET /api/users/{id}/export) and the
// "Danger zone" (erase the account, DELETE /api/users/{id} with the password re-checked).
import { useRef, useState, type FormEvent } from 'react';
import { flushSync } from 'react-dom';
import { useMutation } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { Dialog } from '@/components/ui/Dialog';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError } from '@/lib/api';
import { withDetail } from '@/features/auth/errors';
import { navigate } from '@/app/router';
import { useRequiredSession, useSession } from '@/features/auth/session';
import { PasswordField } from '@/features/auth/components/PasswordField';
import { deleteAccount, exportData } from '../api';
import { downloadBlob, EXPORT_FILENAME } from '../download';
import { SettingsSection, StatusLine } from './SettingsLayout';

export function DataSection() {
  const session = useRequiredSession();
  const [status, setStatus] = useState('');
  const mutation = useMutation({
    mutationFn: () => exportData(session.accessToken, session.user.id),
    onSuccess: (blob) => {
      downloadBlob(blob, EXPORT_FILENAME);
      setStatus(`Downloaded ${EXPORT_FILENAME}.`);
    },
  });
  return (
    <SettingsSection
      id="data-heading"
      title="Your data"
      description="Everything Trellis holds about you (profile, preferences, sign-in sessions, projects, tasks, comments) as one JSON file."
    >
      <div className="space-y-3">
        <ErrorSummary error={mutation.error} />
        <div className="flex flex-wrap items-center gap-3">
          <Button
            variant="secondary"
            busy={mutation.isPending}
            onClick={() => {
              setStatus('');
              mutation.mutate();
            }}
          >
            {mutation.isPending ? 'Preparing your data…' : 'Download my data'}
          </Button>
          <StatusLine>{status}</StatusLine>
        </div>
      </div>
    </SettingsSection>
  );
}

export function DangerZoneSection() {
  const [open, setOpen] = useState(false);
  return (
    <SettingsSection
      id="danger-heading"
      title="Danger zone"
      tone="danger"
      description="Deleting your account erases your profile, sign-in details and preferences, and the projects only you own. What you wrote in shared projects stays, shown as written by “Deleted user”. This cannot be undone."
    >
      <Button variant="danger" onClick={() => setOpen(true)}>Delete account</Button>
      <Dialog open={open} onClose={() => setOpen(false)} title="Delete your account?">
        {open && <DeleteAccountForm onCancel={() => setOpen(false)} />}
      </Dialog>
    </SettingsSection>
  );
}

function DeleteAccountForm({ onCancel }: { onCancel: () => void }) {
  const session = useRequiredSession();
  const { signOut, setNotice } = useSession();
  const [password, setPassword] = useState('');
  const passwordRef = useRef<HTMLInputElement>(null);
  const [localError, setLocalError] = useState<string | null>(null);

  const mutation = useMutation({
    mutationFn: (pw: string) => deleteAccount(session.accessToken, session.user.id, pw),
    onSuccess: () => {
      // One render for all three, so no page sees "signed out" at the old address.
      flushSync(() => {
        signOut({ serverEnded: true });
        setNotice('Your account has been deleted. Thank you for using Trellis.');
        navigate('/login');
      });
    },
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
      <p className="text-sm text-zinc-700">
        This permanently erases the account <strong className="font-medium text-zinc-900">{session.user.email}</strong>: your
        profile, preferences, sessions, and the projects you alone own with all their tasks. It cannot be undone. Download
        your data first if you want a copy.
      </p>
      <ErrorSummary error={apiError?.status === 401 ? withDetail(apiError, 'Wrong password: your account was not deleted.') : mutation.error} />
      <PasswordField inputRef={passwordRef} autoComplete="current-password" value={password} onChange={setPassword} error={fieldError} />
      <div className="flex flex-col-reverse gap-3 sm:flex-row sm:justify-end">
        <Button variant="secondary" onClick={onCancel}>
          Cancel
        </Button>
        <Button variant="danger" type="submit" busy={mutation.isPending}>
          Delete my account permanently
        </Button>
      </div>
    </form>
  );
}
