// The "Danger zone" of project settings: delete the project (owners, admins) after typing its
// name in a dialog; then back to the project list.
import { useRef, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { navigate } from '@/app/router';
import { TextField } from '@/components/ui/Field';
import { Alert } from '@/components/ui/Alert';
import { ApiError } from '@/lib/api';
import { forgetProject, useDeleteProject } from '../api';
import { confirmsName } from '../permissions';
import type { VersionedProject } from '../types';
import { Button } from '@/components/ui/Button';
import { ConfirmDialog } from '@/components/ui/ConfirmDialog';

export function DangerZone({ versioned, onDeleted }: { versioned: VersionedProject; onDeleted: () => void }) {
  const { project, etag } = versioned;
  const queryClient = useQueryClient();
  const mutation = useDeleteProject(project.id);
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const fieldRef = useRef<HTMLInputElement>(null);

  function close() {
    setOpen(false);
    setTyped('');
    setMismatch(false);
    mutation.reset();
  }

  function confirm() {
    if (!confirmsName(typed, project.name)) {
      setMismatch(true);
      fieldRef.current?.focus();
      return;
    }
    mutation.mutate(etag, {
      onSuccess: () => {
        onDeleted();
        navigate('/projects');
        forgetProject(queryClient, project.id);
      },
    });
  }

  const stale = mutation.error instanceof ApiError && mutation.error.status === 412;

  return (
    <section aria-labelledby="danger-heading" className="rounded-xl border border-red-200 bg-white p-5 shadow-sm">
      <h2 id="danger-heading" className="text-base font-semibold text-red-800">
        Danger zone
      </h2>
      <div className="mt-2 flex flex-col gap-3 sm:flex-row sm:items-center sm:justify-between">
        <p className="text-sm text-zinc-700">
          Deleting the project removes its tasks, comments and attachments for every member. It cannot be undone.
        </p>
        <Button variant="danger" className="shrink-0" onClick={() => setOpen(true)}>
          Delete project
        </Button>
      </div>
      <ConfirmDialog
        open={open}
        title={`Delete “${project.name}”?`}
        confirmLabel={mutation.isPending ? 'Deleting…' : 'Delete this project'}
        busy={mutation.isPending}
        error={stale ? undefined : mutation.error}
        onConfirm={confirm}
        onClose={close}
        initialFocus={fieldRef}
      >
        {stale && <Alert tone="error">The project was changed meanwhile. Check its name and confirm again.</Alert>}
        <p>
          All of its tasks, comments and attachments are deleted for every member. This cannot be undone.
        </p>
        <TextField
          ref={fieldRef}
          label={`Type “${project.name}” to confirm`}
          name="confirm-name"
          autoComplete="off"
          spellCheck={false}
          value={typed}
          onChange={(e) => {
            setTyped(e.target.value);
            setMismatch(false);
          }}
          error={mismatch ? 'The name does not match.' : null}
        />
      </ConfirmDialog>
    </section>
  );
}
