// A confirmation dialog for destructive actions: a question, an explanation, the error of a
// failed attempt, and a red confirm button beside "Cancel" (which has the focus first).
import { useEffect, useRef, type FormEvent, type ReactNode, type RefObject } from 'react';
import { Dialog } from '@/components/ui/Dialog';
import { ErrorSummary } from '@/components/ErrorSummary';

export const DANGER_BUTTON =
  'inline-flex min-h-10 items-center justify-center gap-2 rounded-md bg-red-600 px-4 text-sm font-medium text-white shadow-sm hover:bg-red-700 disabled:cursor-not-allowed disabled:opacity-60';

/** The look of the app's secondary `Button`, for a plain <button> that needs a ref. */
export const SECONDARY_BUTTON =
  'inline-flex min-h-10 items-center justify-center gap-2 rounded-md bg-white px-4 text-sm font-medium text-zinc-800 shadow-sm ring-1 ring-inset ring-zinc-300 hover:bg-zinc-50 disabled:cursor-not-allowed disabled:text-zinc-400';

type Props = {
  open: boolean;
  title: string;
  confirmLabel: string;
  busy?: boolean;
  error?: unknown;
  onConfirm: () => void;
  onClose: () => void;
  children?: ReactNode;
  /** Focus this instead of "Cancel" when the dialog opens (e.g. a confirmation field). */
  initialFocus?: RefObject<HTMLElement | null>;
};

export function ConfirmDialog({ open, title, confirmLabel, busy = false, error, onConfirm, onClose, children, initialFocus }: Props) {
  return (
    <Dialog open={open} onClose={busy ? () => undefined : onClose} title={title}>
      <ConfirmBody {...{ confirmLabel, busy, error, onConfirm, onClose, initialFocus }}>{children}</ConfirmBody>
    </Dialog>
  );
}

function ConfirmBody({ confirmLabel, busy, error, onConfirm, onClose, children, initialFocus }: Omit<Props, 'open' | 'title'>) {
  const cancelRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const frame = requestAnimationFrame(() => (initialFocus?.current ?? cancelRef.current)?.focus());
    return () => cancelAnimationFrame(frame);
  }, [initialFocus]);

  function handleSubmit(event: FormEvent) {
    event.preventDefault();
    onConfirm();
  }

  return (
    <form onSubmit={handleSubmit} noValidate className="space-y-4 px-5 pt-3 pb-5">
      <ErrorSummary error={error} />
      {children && <div className="space-y-3 text-sm text-zinc-700">{children}</div>}
      <div className="flex flex-wrap justify-end gap-2 pt-1">
        <button ref={cancelRef} type="button" className={SECONDARY_BUTTON} onClick={onClose} disabled={busy}>
          Cancel
        </button>
        <button type="submit" className={DANGER_BUTTON} disabled={busy} aria-busy={busy || undefined}>
          {busy && <span aria-hidden="true" className="size-3.5 animate-spin rounded-full border-2 border-current border-r-transparent" />}
          {confirmLabel}
        </button>
      </div>
    </form>
  );
}
