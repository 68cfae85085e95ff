// Form controls the account pages need beyond src/components/ui: a labelled select and a checkbox
// with a description.
import { useId, type ComponentPropsWithRef, type ReactNode } from 'react';

const SELECT =
  'block w-full rounded-md border-0 bg-white py-2 pl-3 pr-8 text-sm text-zinc-900 shadow-sm ring-1 ring-inset ring-zinc-300 focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600 aria-invalid:ring-red-500 disabled:opacity-60';

export function SelectField({
  label,
  hint,
  error,
  children,
  className = '',
  ...rest
}: { label: string; hint?: ReactNode; error?: string | null; children: ReactNode } & ComponentPropsWithRef<'select'>) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  return (
    <div className="space-y-1.5">
      <label htmlFor={id} className="block text-sm font-medium text-zinc-800">
        {label}
      </label>
      <select
        id={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={[errorId, hintId].filter(Boolean).join(' ') || undefined}
        className={`${SELECT} ${className}`}
        {...rest}
      >
        {children}
      </select>
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

export function CheckboxField({
  label,
  description,
  ...rest
}: { label: string; description?: ReactNode } & Omit<ComponentPropsWithRef<'input'>, 'type'>) {
  const id = useId();
  const descriptionId = description ? `${id}-description` : undefined;
  return (
    <div className="flex gap-3">
      <input
        id={id}
        type="checkbox"
        aria-describedby={descriptionId}
        className="mt-0.5 size-4 shrink-0 rounded border-zinc-300 accent-indigo-600 disabled:opacity-60"
        {...rest}
      />
      <div className="text-sm">
        <label htmlFor={id} className="font-medium text-zinc-800">
          {label}
        </label>
        {description && (
          <p id={descriptionId} className="text-zinc-600">
            {description}
          </p>
        )}
      </div>
    </div>
  );
}
