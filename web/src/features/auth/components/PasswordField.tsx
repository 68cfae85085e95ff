// Password input with a show/hide toggle and, for new passwords, live length
// feedback (15–256 characters, counted in code points).
import { useState, type Ref } from 'react';
import { TextField } from '@/components/ui/Field';
import { checkPassword, passwordHint, PASSWORD_MIN } from '../password';

type Props = {
  label?: string;
  /** The input's name (password managers tell fields apart by it). Default "password". */
  name?: string;
  value: string;
  onChange: (value: string) => void;
  error?: string | null;
  /** The input element (e.g. to focus it after the server refused the password). */
  inputRef?: Ref<HTMLInputElement>;
  /** "new-password" shows the length meter; "current-password" does not. */
  autoComplete: 'new-password' | 'current-password';
};

export function PasswordField({ label = 'Password', name = 'password', value, onChange, error, autoComplete, inputRef }: Props) {
  const [visible, setVisible] = useState(false);
  const isNew = autoComplete === 'new-password';
  const check = checkPassword(value);

  const toggle = (
    <button
      type="button"
      onClick={() => setVisible((v) => !v)}
      aria-pressed={visible}
      className="rounded text-sm font-medium text-indigo-700 hover:text-indigo-900"
    >
      {visible ? 'Hide' : 'Show'}
      <span className="sr-only"> {label.toLowerCase()}</span>
    </button>
  );

  const hint = isNew ? <PasswordMeter value={value} /> : undefined;

  return (
    <div>
      <TextField
        ref={inputRef}
        label={label}
        labelAside={toggle}
        type={visible ? 'text' : 'password'}
        name={name}
        autoComplete={autoComplete}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        error={error}
        hint={hint}
        spellCheck={false}
        autoCapitalize="none"
        required
      />
      {/* Announces only when the status changes, not on every keystroke. */}
      {isNew && (
        <p className="sr-only" aria-live="polite">
          {check.status === 'ok' ? 'Password is long enough.' : check.status === 'too-long' ? 'Password is too long.' : ''}
        </p>
      )}
    </div>
  );
}

function PasswordMeter({ value }: { value: string }) {
  const check = checkPassword(value);
  const fill = Math.min(100, Math.round((check.length / PASSWORD_MIN) * 100));
  const barColor = check.status === 'ok' ? 'bg-emerald-600' : check.status === 'too-long' ? 'bg-red-600' : 'bg-indigo-500';
  const textColor = check.status === 'ok' ? 'text-emerald-800' : check.status === 'too-long' ? 'text-red-700' : 'text-zinc-600';
  return (
    <div className="space-y-1.5">
      <div aria-hidden="true" className="h-1 w-full overflow-hidden rounded-full bg-zinc-200">
        <div className={`h-full rounded-full transition-[width] ${barColor} ${widthClass(fill)}`} />
      </div>
      <p className={textColor} data-testid="password-hint">
        {passwordHint(check)}
      </p>
    </div>
  );
}

// Width as a class rather than a style attribute: keeps the markup free of inline styles (strict CSP).
const WIDTHS = ['w-0', 'w-1/12', 'w-2/12', 'w-3/12', 'w-4/12', 'w-5/12', 'w-6/12', 'w-7/12', 'w-8/12', 'w-9/12', 'w-10/12', 'w-11/12', 'w-full'];
function widthClass(percent: number): string {
  return WIDTHS[Math.round((percent / 100) * 12)] ?? 'w-full';
}
