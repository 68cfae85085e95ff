// Form to create a project (POST /api/projects); on success the new project's board opens.
import { useRef, useState, type FormEvent } from 'react';
import { Button } from '@/components/ui/Button';
import { TextAreaField, TextField } from '@/components/ui/Field';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, splitFieldErrors } from '@/lib/api';
import { navigate } from '@/app/router';
import { useCreateProject } from '../api';

const FIELDS = ['name', 'description'] as const;
type ProjectField = (typeof FIELDS)[number];

export function CreateProjectForm() {
  const mutation = useCreateProject();
  const nameRef = useRef<HTMLInputElement>(null);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [localError, setLocalError] = useState<string | null>(null);

  const serverErrors =
    mutation.error instanceof ApiError ? splitFieldErrors(mutation.error.fieldErrors, FIELDS) : { byField: {}, other: [] };
  const errors: Partial<Record<ProjectField, string>> = { ...serverErrors.byField };
  if (localError) errors.name = localError;

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const trimmed = name.trim();
    if (trimmed === '') {
      setLocalError('Give the project a name.');
      nameRef.current?.focus();
      return;
    }
    setLocalError(null);
    mutation.mutate(
      { name: trimmed, description: description.trim() },
      {
        onSuccess: (project) => navigate(`/projects/${encodeURIComponent(project.id)}`),
      },
    );
  }

  return (
    <section aria-labelledby="new-project-heading" className="rounded-xl border border-zinc-200 bg-white p-5 shadow-sm">
      <h2 id="new-project-heading" className="text-base font-semibold text-zinc-900">
        New project
      </h2>
      <form onSubmit={handleSubmit} noValidate className="mt-4 space-y-4">
        <ErrorSummary error={mutation.error} otherErrors={serverErrors.other} />
        <TextField
          ref={nameRef}
          label="Name"
          name="name"
          autoComplete="off"
          placeholder="e.g. Website relaunch"
          value={name}
          onChange={(e) => setName(e.target.value)}
          error={errors.name}
          required
        />
        <TextAreaField
          label="Description"
          name="description"
          placeholder="What is this project about? (optional)"
          rows={3}
          value={description}
          onChange={(e) => setDescription(e.target.value)}
          error={errors.description}
        />
        <div className="flex flex-wrap items-center gap-3">
          <Button type="submit" busy={mutation.isPending}>
            {mutation.isPending ? 'Creating…' : 'Create project'}
          </Button>
        </div>
      </form>
    </section>
  );
}
