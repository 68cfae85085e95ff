// Labelled form fields (input and textarea) with hint and error text wired to
// aria-describedby / aria-invalid.
import { useId, type ComponentPropsWithRef, type ReactNode } from 'react';

type Common = {
  label: string;
  hint?: ReactNode;
  error?: string | null;
  /** Rendered to the right of the label (e.g. a show/hide toggle). */
  labelAside?: ReactNode;
};

const CONTROL =
  'block w-full rounded-md border-0 bg-white px-3 py-2 text-sm text-zinc-900 shadow-sm ring-1 ring-inset ring-zinc-300 placeholder:text-zinc-500 focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600 aria-invalid:ring-red-500';

function useFieldIds(hint: ReactNode, error: string | null | undefined) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  const describedBy = [errorId, hintId].filter(Boolean).join(' ') || undefined;
  return { id, hintId, errorId, describedBy };
}

function FieldFrame({
  id,
  label,
  labelAside,
  hint,
  hintId,
  error,
  errorId,
  children,
}: Common & { id: string; hintId?: string; errorId?: string; children: ReactNode }) {
  return (
    <div className="space-y-1.5">
      <div className="flex items-baseline justify-between gap-2">
        <label htmlFor={id} className="block text-sm font-medium text-zinc-800">
          {label}
        </label>
        {labelAside}
      </div>
      {children}
      {error && (
        <p id={errorId} className="text-sm text-red-700">
          {error}
        </p>
      )}
      {hint && (
        <div id={hintId} className="text-sm text-zinc-600">
          {hint}
        </div>
      )}
    </div>
  );
}

export function TextField({ label, hint, error, labelAside, className = '', ...rest }: Common & ComponentPropsWithRef<'input'>) {
  const { id, hintId, errorId, describedBy } = useFieldIds(hint, error);
  return (
    <FieldFrame {...{ id, label, labelAside, hint, hintId, error, errorId }}>
      <input
        id={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy}
        className={`${CONTROL} ${className}`}
        {...rest}
      />
    </FieldFrame>
  );
}

export function TextAreaField({ label, hint, error, labelAside, className = '', ...rest }: Common & ComponentPropsWithRef<'textarea'>) {
  const { id, hintId, errorId, describedBy } = useFieldIds(hint, error);
  return (
    <FieldFrame {...{ id, label, labelAside, hint, hintId, error, errorId }}>
      <textarea
        id={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy}
        className={`${CONTROL} min-h-20 resize-y ${className}`}
        {...rest}
      />
    </FieldFrame>
  );
}
