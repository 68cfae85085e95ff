// "Your data" (download everything held about you, POST /api/users/{id}/export with the current
// password: a step-up, since a stolen session alone must not download it) and the "Danger zone"
// (erase the account, DELETE /api/users/{id} with the current password).
import { useState } from 'react';
import { flushSync } from 'react-dom';
import { Button } from '@/components/ui/Button';
import { Dialog } from '@/components/ui/Dialog';
import { navigate } from '@/app/router';
import { useRequiredSession, useSession } from '@/features/auth/session';
import { deleteAccount, exportData } from '../api';
import { downloadBlob, EXPORT_FILENAME } from '../download';
import { PasswordConfirmForm } from './PasswordConfirmForm';
import { SettingsSection, StatusLine } from './SettingsLayout';

export function DataSection() {
  const session = useRequiredSession();
  const [status, setStatus] = useState('');
  const [open, setOpen] = useState(false);
  return (
    <SettingsSection
      id="data-heading"
      title="Your data"
      description="Everything Trellis holds about you (profile, preferences, sign-in sessions, projects, tasks, comments) as one JSON file."
    >
      <div className="flex flex-wrap items-center gap-3">
        <Button
          variant="secondary"
          onClick={() => {
            setStatus('');
            setOpen(true);
          }}
        >
          Download my data
        </Button>
        <StatusLine>{status}</StatusLine>
      </div>
      <Dialog open={open} onClose={() => setOpen(false)} title="Download your data">
        {open && (
          <PasswordConfirmForm
            refusedDetail="Wrong password: nothing was downloaded."
            confirmLabel="Download"
            confirmVariant="primary"
            action={async (password) => downloadBlob(await exportData(session.accessToken, session.user.id, password), EXPORT_FILENAME)}
            onDone={() => {
              setOpen(false);
              setStatus(`Downloaded ${EXPORT_FILENAME}.`);
            }}
            onCancel={() => setOpen(false)}
          >
            Your data holds your email address, sessions and everything you wrote, so Trellis asks for your password before
            handing it out, even while you are signed in.
          </PasswordConfirmForm>
        )}
      </Dialog>
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
