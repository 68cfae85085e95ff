// Admin dashboard (placeholder until its feature lands).
import { usePage } from '@/app/usePage';

export function AdminDashboardPage() {
  const headingRef = usePage('Admin dashboard');
  return (
    <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
      Admin dashboard
    </h1>
  );
}
