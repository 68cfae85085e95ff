// A destructive action that asks first, in place (no second modal on top of the drawer): the
// trigger button turns into a question with a confirm and a "Cancel" button; Escape cancels.
import { useEffect, useRef, useState, type ReactNode } from 'react';

export function ConfirmAction({
  label,
  text,
  question,
  confirmLabel,
  onConfirm,
  busy = false,
  triggerClassName = '',
  small = false,
}: {
  /** The trigger's accessible name, e.g. "Delete task". */
  label: string;
  /** The trigger's visible text when shorter than its name (e.g. "Delete" for "Delete notes.pdf"). */
  text?: string;
  question: ReactNode;
  /** E.g. "Yes, delete the task". */
  confirmLabel: string;
  onConfirm: () => void;
  busy?: boolean;
  triggerClassName?: string;
  small?: boolean;
}) {
  const [asking, setAsking] = useState(false);
  const cancelRef = useRef<HTMLButtonElement>(null);
  const triggerRef = useRef<HTMLButtonElement>(null);
  const wasAsking = useRef(false);

  useEffect(() => {
    if (asking) cancelRef.current?.focus();
    else if (wasAsking.current) triggerRef.current?.focus();
    wasAsking.current = asking;
  }, [asking]);

  const size = small ? 'min-h-8 px-2.5 text-xs' : 'min-h-10 px-3 text-sm';

  if (!asking) {
    return (
      <button
        ref={triggerRef}
        type="button"
        aria-label={text && text !== label ? label : undefined}
        onClick={() => setAsking(true)}
        className={
          triggerClassName ||
          `inline-flex items-center rounded-md font-medium text-red-700 ring-1 ring-inset ring-red-200 hover:bg-red-50 ${size}`
        }
      >
        {text ?? label}
      </button>
    );
  }
  return (
    <div
      role="group"
      aria-label={label}
      className="flex flex-wrap items-center gap-2 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800"
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          // Cancel the question, not the drawer.
          e.preventDefault();
          e.stopPropagation();
          setAsking(false);
        }
      }}
    >
      <span className="mr-auto">{question}</span>
      <button
        type="button"
        onClick={onConfirm}
        disabled={busy}
        aria-busy={busy || undefined}
        className={`inline-flex items-center gap-2 rounded-md bg-red-600 font-medium text-white hover:bg-red-700 disabled:bg-red-400 ${size}`}
      >
        {busy && <span aria-hidden="true" className="size-3.5 animate-spin rounded-full border-2 border-current border-r-transparent" />}
        {confirmLabel}
      </button>
      <button
        ref={cancelRef}
        type="button"
        onClick={() => setAsking(false)}
        disabled={busy}
        className={`inline-flex items-center rounded-md bg-white font-medium text-zinc-800 shadow-sm ring-1 ring-inset ring-zinc-300 hover:bg-zinc-50 disabled:text-zinc-400 ${size}`}
      >
        Cancel
      </button>
    </div>
  );
}
