// Audit log (placeholder until its feature lands).
import { usePage } from '@/app/usePage';

export function AdminAuditPage() {
  const headingRef = usePage('Audit log');
  return (
    <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
      Audit log
    </h1>
  );
}
