// Verify your email (placeholder until its feature lands).
import { usePage } from '@/app/usePage';

export function VerifyEmailPage() {
  const headingRef = usePage('Verify your email');
  return (
    <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
      Verify your email
    </h1>
  );
}
