// A modal dialog on the native <dialog> element: focus is trapped and restored by the browser,
// Escape closes it, and it is labelled by its title. `side` makes it a drawer on the right.
import { useEffect, useId, useRef, type ReactNode } from 'react';

type DialogProps = {
  open: boolean;
  onClose: () => void;
  title: string;
  /** Hidden title (the content shows its own heading). */
  hideTitle?: boolean;
  side?: boolean;
  children: ReactNode;
  className?: string;
};

export function Dialog({ open, onClose, title, hideTitle = false, side = false, children, className = '' }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const pressedOnBackdrop = useRef(false);

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);

  const frame = side
    ? 'ml-auto mr-0 h-dvh max-h-dvh w-full max-w-2xl rounded-none sm:rounded-l-xl'
    : 'mx-auto mt-[10vh] w-[calc(100%-2rem)] max-w-lg rounded-xl';

  return (
    <dialog
      ref={ref}
      aria-labelledby={titleId}
      onClose={onClose}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
      onMouseDown={(e) => {
        pressedOnBackdrop.current = e.target === ref.current;
      }}
      onClick={(e) => {
        // A click on the backdrop (the dialog element itself, outside its content) closes it;
        // a text selection that merely ends there does not.
        if (e.target === ref.current && pressedOnBackdrop.current) onClose();
        pressedOnBackdrop.current = false;
      }}
      className={`bg-white p-0 text-zinc-900 shadow-2xl ring-1 ring-zinc-200 backdrop:bg-black/50 ${frame} ${className}`}
    >
      {open && (
        <div className="flex h-full flex-col">
          <h2 id={titleId} className={hideTitle ? 'sr-only' : 'px-5 pt-5 text-lg font-semibold text-zinc-900'}>
            {title}
          </h2>
          {children}
        </div>
      )}
    </dialog>
  );
}
