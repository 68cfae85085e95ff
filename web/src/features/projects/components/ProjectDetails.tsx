// The "Details" section of project settings: rename and re-describe (PATCH /api/projects/{id}
// with If-Match) for owners, editors and admins; everyone else reads the details.
import { useState, type FormEvent } from 'react';
import { Button } from '@/components/ui/Button';
import { TextAreaField, TextField } from '@/components/ui/Field';
import { ErrorSummary } from '@/components/ErrorSummary';
import { Alert } from '@/components/ui/Alert';
import { ApiError, splitFieldErrors } from '@/lib/api';
import { useUpdateProject } from '../api';
import { projectChanges } from '../permissions';
import type { VersionedProject } from '../types';

const FIELDS = ['name', 'description'] as const;
type DetailsField = (typeof FIELDS)[number];
type Draft = { name: string; description: string };

export function ProjectDetails({ versioned, canEdit }: { versioned: VersionedProject; canEdit: boolean }) {
  const { project } = versioned;
  return (
    <section aria-labelledby="details-heading" className="rounded-xl border border-zinc-200 bg-white p-5 shadow-sm">
      <h2 id="details-heading" className="text-base font-semibold text-zinc-900">
        Details
      </h2>
      {canEdit ? (
        <DetailsForm versioned={versioned} />
      ) : (
        <>
          <p className="mt-1 text-sm text-zinc-600">Only owners and editors can change these.</p>
          <dl className="mt-4 space-y-3 text-sm">
            <div>
              <dt className="font-medium text-zinc-800">Name</dt>
              <dd className="mt-0.5 break-words text-zinc-900">{project.name}</dd>
            </div>
            <div>
              <dt className="font-medium text-zinc-800">Description</dt>
              <dd className="mt-0.5 break-words whitespace-pre-line text-zinc-700">
                {project.description?.trim() ? project.description : <span className="text-zinc-500">No description</span>}
              </dd>
            </div>
          </dl>
        </>
      )}
    </section>
  );
}

function DetailsForm({ versioned }: { versioned: VersionedProject }) {
  const { project, etag } = versioned;
  const mutation = useUpdateProject(project.id);
  // Untouched fields follow the server (live updates, someone else's rename); edited ones keep the person's text.
  const [draft, setDraft] = useState<Draft | null>(null);
  const [localError, setLocalError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const values: Draft = draft ?? { name: project.name, description: project.description ?? '' };

  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const stale = apiError?.status === 412;
  const serverErrors = apiError ? splitFieldErrors(apiError.fieldErrors, FIELDS) : { byField: {}, other: [] };
  const errors: Partial<Record<DetailsField, string>> = { ...serverErrors.byField };
  if (localError) errors.name = localError;

  function edit(field: keyof Draft, value: string) {
    setNotice(null);
    setDraft({ ...values, [field]: value });
  }

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setNotice(null);
    if (values.name.trim() === '') {
      setLocalError('Give the project a name.');
      event.currentTarget.querySelector<HTMLInputElement>('input[name="name"]')?.focus();
      return;
    }
    setLocalError(null);
    const changes = projectChanges(project, values);
    if (!changes) {
      setDraft(null);
      setNotice('Nothing to save: no changes.');
      return;
    }
    // After a 412 the person saw the warning; the refetched ETag lets this save go through.
    mutation.mutate(
      { changes, etag },
      {
        onSuccess: () => {
          setDraft(null);
          setNotice('Saved.');
        },
      },
    );
  }

  return (
    <form onSubmit={handleSubmit} noValidate className="mt-4 space-y-4">
      {stale ? (
        <Alert tone="error" title="Someone else changed this project meanwhile.">
          The latest version has been loaded. Your text is still in the fields: press Save again to keep it.
        </Alert>
      ) : (
        <ErrorSummary error={mutation.error} otherErrors={serverErrors.other} />
      )}
      <TextField
        label="Name"
        name="name"
        autoComplete="off"
        value={values.name}
        onChange={(e) => edit('name', e.target.value)}
        error={errors.name}
        required
      />
      <TextAreaField
        label="Description"
        name="description"
        rows={3}
        value={values.description}
        onChange={(e) => edit('description', e.target.value)}
        error={errors.description}
      />
      <div className="flex flex-wrap items-center gap-3">
        <Button type="submit" busy={mutation.isPending}>
          {mutation.isPending ? 'Saving…' : 'Save'}
        </Button>
        {draft && (
          <Button
            variant="ghost"
            onClick={() => {
              setDraft(null);
              setLocalError(null);
              mutation.reset();
            }}
          >
            Discard changes
          </Button>
        )}
        <p role="status" className="text-sm text-emerald-800">
          {notice}
        </p>
      </div>
    </form>
  );
}
