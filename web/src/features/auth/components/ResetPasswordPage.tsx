// Choose a new password (placeholder until its feature lands).
import { usePage } from '@/app/usePage';

export function ResetPasswordPage() {
  const headingRef = usePage('Choose a new password');
  return (
    <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
      Choose a new password
    </h1>
  );
}
