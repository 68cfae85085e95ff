// The app's button: real <button>, four looks (primary, secondary, ghost, danger), and a busy
// state for pending requests. `ref` passes through (React 19 props).
import type { ComponentPropsWithRef } from 'react';

type Variant = 'primary' | 'secondary' | 'ghost' | 'danger';

const VARIANTS: Record<Variant, string> = {
  primary:
    'bg-indigo-600 text-white shadow-sm hover:bg-indigo-700 active:bg-indigo-800 disabled:bg-indigo-400 dark:hover:bg-indigo-500 dark:active:bg-indigo-400 dark:disabled:bg-zinc-300',
  secondary:
    'bg-white text-zinc-800 shadow-sm ring-1 ring-inset ring-zinc-300 hover:bg-zinc-50 disabled:text-zinc-400',
  ghost: 'text-zinc-700 hover:bg-zinc-200/60 hover:text-zinc-900 disabled:text-zinc-400',
  // red-500 on hover (not 700): the dark theme turns 700 light, under white text.
  danger: 'bg-red-600 text-white shadow-sm hover:bg-red-500 active:bg-red-600 disabled:opacity-60',
};

type ButtonProps = ComponentPropsWithRef<'button'> & {
  variant?: Variant;
  busy?: boolean;
};

export function Button({ variant = 'primary', busy = false, className = '', type = 'button', disabled, children, ...rest }: ButtonProps) {
  return (
    <button
      type={type}
      disabled={disabled || busy}
      aria-busy={busy || undefined}
      className={`inline-flex min-h-10 items-center justify-center gap-2 rounded-md px-4 text-sm font-medium transition-colors disabled:cursor-not-allowed ${VARIANTS[variant]} ${className}`}
      {...rest}
    >
      {busy && (
        <span
          aria-hidden="true"
          className="size-3.5 animate-spin rounded-full border-2 border-current border-r-transparent"
        />
      )}
      {children}
    </button>
  );
}
