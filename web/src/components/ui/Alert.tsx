// A message box for form-level errors and notices; errors are announced at once.
import type { ReactNode } from 'react';

type Tone = 'error' | 'info';

const TONES: Record<Tone, string> = {
  error: 'border-red-200 bg-red-50 text-red-800',
  info: 'border-indigo-200 bg-indigo-50 text-indigo-900',
};

export function Alert({
  tone = 'error',
  title,
  children,
  footnote,
}: {
  tone?: Tone;
  title?: string;
  children?: ReactNode;
  footnote?: string;
}) {
  return (
    <div role={tone === 'error' ? 'alert' : 'status'} className={`rounded-md border px-3 py-2.5 text-sm ${TONES[tone]}`}>
      {title && <p className="font-medium">{title}</p>}
      {children && <div className={title ? 'mt-1' : ''}>{children}</div>}
      {footnote && <p className="mt-1 text-xs opacity-80">{footnote}</p>}
    </div>
  );
}
