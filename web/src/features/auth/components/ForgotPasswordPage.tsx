// Reset your password (placeholder until its feature lands).
import { usePage } from '@/app/usePage';

export function ForgotPasswordPage() {
  const headingRef = usePage('Reset your password');
  return (
    <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
      Reset your password
    </h1>
  );
}
