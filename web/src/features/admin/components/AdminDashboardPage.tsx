// The admin dashboard: live server metrics from /metrics (rate, errors, latency) and usage
// statistics from /api/admin/stats (active users, sign-ups, totals per day or week).
import { usePage } from '@/app/usePage';
import { AdminNav } from './AdminNav';
import { LiveMetricsPanel } from './LiveMetricsPanel';
import { UsageStatsPanel } from './UsageStatsPanel';

export function AdminDashboardPage() {
  const headingRef = usePage('Admin dashboard');
  return (
    <>
      <AdminNav />
      <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
        Admin dashboard
      </h1>
      <div className="mt-6 space-y-10">
        <LiveMetricsPanel />
        <UsageStatsPanel />
      </div>
    </>
  );
}
