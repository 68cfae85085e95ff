// The inline "new task" form at the bottom of a column: a title, "Add" and "Cancel". It stays
// open after adding so several tasks can be typed in a row; Escape closes it.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Button } from '@/components/ui/Button';
import { TextField } from '@/components/ui/Field';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError } from '@/lib/api';
import { STATUS_LABELS, type TaskStatus } from '@/features/tasks/types';
import { newIdempotencyKey } from '@/lib/api';

export const TITLE_MAX = 200;

/** What is wrong with a title, or null. */
export function titleError(title: string): string | null {
  if (title.trim() === '') return 'Enter a title.';
  if (title.trim().length > TITLE_MAX) return `Keep the title under ${TITLE_MAX + 1} characters.`;
  return null;
}

export function AddTaskForm({
  status,
  onCreate,
  onClose,
}: {
  status: TaskStatus;
  onCreate: (title: string, idempotencyKey: string) => Promise<void>;
  onClose: () => void;
}) {
  const [title, setTitle] = useState('');
  const [busy, setBusy] = useState(false);
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [added, setAdded] = useState<string | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  // A retry of the same title reuses its key, so a lost answer never makes a second task.
  const attempt = useRef<{ title: string; key: string } | null>(null);

  useEffect(() => inputRef.current?.focus(), []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const problem = titleError(title);
    setFieldError(problem);
    setAdded(null);
    if (problem) {
      inputRef.current?.focus();
      return;
    }
    const clean = title.trim();
    if (attempt.current?.title !== clean) attempt.current = { title: clean, key: newIdempotencyKey() };
    setBusy(true);
    setError(null);
    try {
      await onCreate(clean, attempt.current.key);
      attempt.current = null;
      setAdded(clean);
      setTitle('');
    } catch (err) {
      if (err instanceof ApiError && err.fieldErrors.some((f) => f.field === 'title')) {
        setFieldError(err.fieldErrors.find((f) => f.field === 'title')?.message ?? 'Invalid title.');
      } else setError(err);
    } finally {
      setBusy(false);
      inputRef.current?.focus();
    }
  }

  return (
    <form
      onSubmit={submit}
      noValidate
      aria-label={`New task in ${STATUS_LABELS[status]}`}
      className="space-y-2 rounded-lg border border-zinc-200 bg-white p-3 shadow-sm"
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          e.stopPropagation();
          onClose();
        }
      }}
    >
      <TextField
        ref={inputRef}
        label="New task title"
        name="title"
        autoComplete="off"
        maxLength={TITLE_MAX + 50}
        value={title}
        error={fieldError}
        onChange={(e) => {
          setTitle(e.target.value);
          if (fieldError) setFieldError(null);
        }}
      />
      {error ? <ErrorSummary error={error} /> : null}
      <div className="flex items-center gap-2">
        <Button type="submit" busy={busy} className="min-h-9 px-3">
          Add
        </Button>
        <Button variant="ghost" className="min-h-9 px-3" onClick={onClose}>
          Cancel
        </Button>
      </div>
      <p role="status" className="text-xs text-zinc-600">
        {added ? `Added “${added}”.` : ''}
      </p>
    </form>
  );
}
