// "Your data" (download everything held about you, GET /api/users/{id}/export) and the
// "Danger zone" (erase the account, DELETE /api/users/{id} with the password re-checked).
import { useState } from 'react';
import { flushSync } from 'react-dom';
import { useMutation } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { Dialog } from '@/components/ui/Dialog';
import { ErrorSummary } from '@/components/ErrorSummary';
import { navigate } from '@/app/router';
import { useRequiredSession, useSession } from '@/features/auth/session';
import { deleteAccount, exportData } from '../api';
import { downloadBlob, EXPORT_FILENAME } from '../download';
import { PasswordConfirmForm } from './PasswordConfirmForm';
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
  return (
    <PasswordConfirmForm
      refusedDetail="Wrong password: your account was not deleted."
      confirmLabel="Delete my account permanently"
      action={(password) => deleteAccount(session.accessToken, session.user.id, password)}
      onDone={() => {
        // One render for all three, so no page sees "signed out" at the old address.
        flushSync(() => {
          signOut({ serverEnded: true });
          setNotice('Your account has been deleted. Thank you for using Trellis.');
          navigate('/login');
        });
      }}
      onCancel={onCancel}
    >
      This permanently erases the account <strong className="font-medium text-zinc-900">{session.user.email}</strong>: your
      profile, preferences, sessions, and the projects you alone own with all their tasks. It cannot be undone. Download your
      data first if you want a copy.
    </PasswordConfirmForm>
  );
}
