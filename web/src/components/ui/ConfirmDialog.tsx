// A confirmation dialog for destructive actions: a question, an explanation, the error of a
// failed attempt, and a red confirm button beside "Cancel" (which has the focus first).
import { useEffect, useRef, type FormEvent, type ReactNode, type RefObject } from 'react';
import { Dialog } from './Dialog';
import { ErrorSummary } from '@/components/ErrorSummary';
import { Button } from './Button';

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
        <Button ref={cancelRef} variant="secondary" onClick={onClose} disabled={busy}>
          Cancel
        </Button>
        <Button type="submit" variant="danger" busy={busy}>
          {confirmLabel}
        </Button>
      </div>
    </form>
  );
}
