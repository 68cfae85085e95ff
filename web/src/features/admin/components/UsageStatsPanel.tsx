// Usage statistics from /api/admin/stats: totals as tiles, active users and sign-ups per day or
// week as bar charts, with a period switch.
import { useId, useState } from 'react';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { useStats } from '../api';
import { BarChart } from '../charts/BarChart';
import { ChartCard } from '../charts/ChartCard';
import { rangeLabel, shapeStats, statsTiles } from '../lib/stats';
import type { StatsPeriod } from '../types';

const PERIODS: { value: StatsPeriod; label: string }[] = [
  { value: 'day', label: 'Day' },
  { value: 'week', label: 'Week' },
];

export function UsageStatsPanel() {
  const [period, setPeriod] = useState<StatsPeriod>('day');
  const query = useStats(period);
  const name = useId();
  const per = period === 'day' ? 'day' : 'week';

  return (
    <section aria-labelledby="usage-heading" aria-busy={query.isFetching || undefined}>
      <div className="flex flex-wrap items-center justify-between gap-3">
        <div>
          <h2 id="usage-heading" className="text-lg font-semibold text-zinc-900">
            Usage
          </h2>
          {query.data && <p className="text-sm text-zinc-600">{rangeLabel(query.data)} (UTC), from the audit log</p>}
        </div>
        <div className="flex items-center gap-2">
          <span id={`${name}-label`} className="text-sm text-zinc-700">
            Period
          </span>
          <div role="group" aria-labelledby={`${name}-label`} className="inline-flex rounded-md bg-zinc-100 p-0.5 ring-1 ring-zinc-200">
            {PERIODS.map((p) => (
              <button
                key={p.value}
                type="button"
                aria-pressed={period === p.value}
                onClick={() => setPeriod(p.value)}
                className="min-h-9 rounded px-3 text-sm font-medium text-zinc-700 hover:text-zinc-900 aria-pressed:bg-indigo-600 aria-pressed:text-white aria-pressed:shadow-sm"
              >
                {p.label}
              </button>
            ))}
          </div>
        </div>
      </div>

      {query.isPending ? (
        <p role="status" className="mt-4 text-sm text-zinc-600">
          Loading statistics…
        </p>
      ) : query.isError ? (
        <div className="mt-4 space-y-3">
          <ErrorSummary error={query.error} />
          <Button variant="secondary" onClick={() => void query.refetch()}>
            Try again
          </Button>
        </div>
      ) : (
        (() => {
          const stats = query.data;
          const shaped = shapeStats(stats);
          const lastLong = shaped.longLabels[shaped.longLabels.length - 1];
          const lastActive = shaped.activeUsers[shaped.activeUsers.length - 1] ?? 0;
          const lastSignups = shaped.signups[shaped.signups.length - 1] ?? 0;
          return (
            <>
              <dl className="mt-4 grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-5" data-testid="stats-totals">
                {statsTiles(stats.totals).map((tile) => (
                  <div key={tile.key} className="rounded-xl border border-zinc-200 bg-white px-4 py-3 shadow-sm">
                    <dt className="text-xs font-medium text-zinc-600">{tile.label}</dt>
                    <dd className="mt-1 text-2xl font-semibold tabular-nums text-zinc-900">{tile.value.toLocaleString()}</dd>
                  </div>
                ))}
              </dl>
              {stats.buckets.length === 0 ? (
                <p className="mt-4 text-sm text-zinc-600">No periods in this range.</p>
              ) : (
                <div className="mt-4 grid grid-cols-1 gap-4 lg:grid-cols-2">
                  <ChartCard
                    testId="chart-active-users"
                    title="Active users"
                    summary={`Distinct users with at least one audited action per ${per}`}
                    table={{ columns: [period === 'day' ? 'Day' : 'Week', 'Active users'], rows: shaped.longLabels.map((l, i) => [l, shaped.activeUsers[i] ?? 0]) }}
                  >
                    <BarChart
                      labels={shaped.labels}
                      longLabels={shaped.longLabels}
                      values={shaped.activeUsers}
                      barClass="fill-indigo-500"
                      ariaLabel={`Active users per ${per}, ${shaped.labels.length} ${per}s: ${lastActive} in ${lastLong ?? 'the latest'}; ${stats.totals.active_users} distinct over the range`}
                    />
                  </ChartCard>
                  <ChartCard
                    testId="chart-signups"
                    title="Sign-ups"
                    summary={`New accounts per ${per}`}
                    table={{ columns: [period === 'day' ? 'Day' : 'Week', 'Sign-ups'], rows: shaped.longLabels.map((l, i) => [l, shaped.signups[i] ?? 0]) }}
                  >
                    <BarChart
                      labels={shaped.labels}
                      longLabels={shaped.longLabels}
                      values={shaped.signups}
                      barClass="fill-emerald-500"
                      ariaLabel={`Sign-ups per ${per}, ${shaped.labels.length} ${per}s: ${lastSignups} in ${lastLong ?? 'the latest'}; ${stats.totals.signups} in total`}
                    />
                  </ChartCard>
                </div>
              )}
            </>
          );
        })()
      )}
    </section>
  );
}
