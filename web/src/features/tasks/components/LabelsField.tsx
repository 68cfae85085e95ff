// The task's labels: chips with a "Remove label X" button each, and an "Add label" input that
// adds on Enter (trimmed, no duplicates, at most 20 of at most 50 characters).
import { useId, useRef, useState } from 'react';
import { addLabel, LABEL_MAX, LABELS_MAX } from '../logic';

const CHIP = 'inline-flex max-w-full items-center gap-1 rounded-full bg-indigo-50 py-0.5 text-xs font-medium text-indigo-800 ring-1 ring-inset ring-indigo-200';

/** Read-only chips. */
export function LabelChips({ labels }: { labels: string[] }) {
  return (
    <ul aria-label="Labels" className="flex flex-wrap gap-1.5">
      {labels.map((label) => (
        <li key={label} className={`${CHIP} px-2.5`}>
          <span className="truncate">{label}</span>
        </li>
      ))}
    </ul>
  );
}

export function LabelsField({ labels, error, onChange }: { labels: string[]; error?: string; onChange: (labels: string[]) => void }) {
  const [input, setInput] = useState('');
  const [localError, setLocalError] = useState<string | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const id = useId();
  const shown = localError ?? error ?? null;

  function add() {
    const result = addLabel(labels, input);
    if ('error' in result) {
      setLocalError(result.error);
      return;
    }
    setLocalError(null);
    setInput('');
    if (result.labels.length !== labels.length) onChange(result.labels);
  }

  return (
    <fieldset className="min-w-0 space-y-2">
      <legend className="text-sm font-medium text-zinc-800">Labels</legend>
      {labels.length > 0 ? (
        <ul aria-label="Labels" className="flex flex-wrap gap-1.5">
          {labels.map((label) => (
            <li key={label} className={`${CHIP} pl-2.5 pr-1`}>
              <span className="truncate">{label}</span>
              <button
                type="button"
                aria-label={`Remove label ${label}`}
                title={`Remove label ${label}`}
                className="grid size-5 shrink-0 place-items-center rounded-full text-indigo-700 hover:bg-indigo-100 hover:text-indigo-900"
                onClick={() => {
                  onChange(labels.filter((l) => l !== label));
                  // The button goes away: keep the keyboard in the field.
                  inputRef.current?.focus();
                }}
              >
                <svg aria-hidden="true" viewBox="0 0 16 16" className="size-3" fill="none" stroke="currentColor" strokeWidth="2">
                  <path d="M4 4l8 8M12 4l-8 8" strokeLinecap="round" />
                </svg>
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p className="text-sm text-zinc-600">No labels yet.</p>
      )}
      <div className="flex gap-2">
        <label htmlFor={id} className="sr-only">
          Add label
        </label>
        <input
          ref={inputRef}
          id={id}
          value={input}
          placeholder="Add label"
          maxLength={LABEL_MAX * 2}
          autoComplete="off"
          enterKeyHint="done"
          aria-invalid={shown ? true : undefined}
          aria-describedby={`${id}-hint${shown ? ` ${id}-error` : ''}`}
          onChange={(e) => {
            setInput(e.target.value);
            setLocalError(null);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              add();
            } else if (e.key === 'Escape' && input !== '') {
              e.preventDefault();
              setInput('');
              setLocalError(null);
            }
          }}
          className="block w-full max-w-xs rounded-md border-0 bg-white px-3 py-1.5 text-sm text-zinc-900 shadow-sm ring-1 ring-inset ring-zinc-300 placeholder:text-zinc-500 focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600 aria-invalid:ring-red-500"
        />
        <button
          type="button"
          onClick={add}
          className="inline-flex min-h-9 shrink-0 items-center rounded-md bg-white px-3 text-sm font-medium text-zinc-800 shadow-sm ring-1 ring-inset ring-zinc-300 hover:bg-zinc-50"
        >
          Add
        </button>
      </div>
      {shown && (
        <p id={`${id}-error`} className="text-sm text-red-700">
          {shown}
        </p>
      )}
      <p id={`${id}-hint`} className="text-xs text-zinc-600">
        Press Enter to add. Up to {LABELS_MAX} labels of up to {LABEL_MAX} characters.
      </p>
    </fieldset>
  );
}
