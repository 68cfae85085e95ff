// Live server metrics: request rate, error rate and latency quantiles, one point per scrape of
// /metrics (every 5 s while the tab is visible), the last 60 points.
import { ErrorSummary } from '@/components/ErrorSummary';
import { ChartCard } from '../charts/ChartCard';
import { LineChart, type LineSeries } from '../charts/LineChart';
import { METRICS_INTERVAL_MS, useLiveMetrics } from '../hooks/useLiveMetrics';
import type { MetricsPoint } from '../lib/metrics';
import { formatDuration, formatNumber, formatPercent } from '../lib/scale';

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

const fmtRate = (v: number) => `${formatNumber(v)}`;
const latest = <K extends keyof MetricsPoint>(points: MetricsPoint[], key: K): MetricsPoint[K] | undefined => points[points.length - 1]?.[key];
const show = (v: number | null | undefined, format: (n: number) => string) => (v === null || v === undefined ? 'no requests' : format(v));

export function LiveMetricsPanel() {
  const { points, error, running, started } = useLiveMetrics();
  const times = points.map((p) => p.at);
  const rows = (pick: (p: MetricsPoint) => (string | number)[]) => [...points].reverse().map((p) => [timeFormat.format(p.at), ...pick(p)]);

  const rps = latest(points, 'rps');
  const err5 = latest(points, 'errorRate');
  const err4 = latest(points, 'clientErrorRate');
  const p50 = latest(points, 'p50');
  const p95 = latest(points, 'p95');
  const p99 = latest(points, 'p99');

  const rateSeries: LineSeries[] = [{ label: 'Requests per second', strokeClass: 'stroke-indigo-500', textClass: 'fill-indigo-600', values: points.map((p) => p.rps) }];
  const errorSeries: LineSeries[] = [
    { label: '5xx', strokeClass: 'stroke-red-500', textClass: 'fill-red-600', values: points.map((p) => p.errorRate) },
    { label: '4xx', strokeClass: 'stroke-amber-500', textClass: 'fill-amber-600', values: points.map((p) => p.clientErrorRate) },
  ];
  const latencySeries: LineSeries[] = [
    { label: 'p50', strokeClass: 'stroke-emerald-500', textClass: 'fill-emerald-600', values: points.map((p) => p.p50) },
    { label: 'p95', strokeClass: 'stroke-indigo-500', textClass: 'fill-indigo-600', values: points.map((p) => p.p95) },
    { label: 'p99', strokeClass: 'stroke-red-500', textClass: 'fill-red-600', values: points.map((p) => p.p99) },
  ];

  const rateLabel = points.length ? `Requests per second, last ${points.length} points: latest ${fmtRate(rps ?? 0)} req/s` : 'Requests per second: no data yet';
  const errorLabel = points.length
    ? `Error rate, latest: 5xx ${show(err5, formatPercent)}, 4xx ${show(err4, formatPercent)}`
    : 'Error rate: no data yet';
  const latencyLabel = points.length
    ? `Latency, latest: p50 ${show(p50, formatDuration)}, p95 ${show(p95, formatDuration)}, p99 ${show(p99, formatDuration)}`
    : 'Latency: no data yet';

  return (
    <section aria-labelledby="live-metrics-heading">
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h2 id="live-metrics-heading" className="text-lg font-semibold text-zinc-900">
          Live traffic
        </h2>
        <p className="text-xs text-zinc-600" data-testid="metrics-status">
          {running ? (
            <>
              <span aria-hidden="true" className="mr-1.5 inline-block size-2 animate-pulse rounded-full bg-emerald-500" />
              Refreshing every {METRICS_INTERVAL_MS / 1000} s
            </>
          ) : (
            'Paused while this tab is hidden'
          )}
        </p>
      </div>
      <p className="mt-1 text-sm text-zinc-600">
        From the server&rsquo;s Prometheus metrics (this dashboard&rsquo;s own scrapes of /metrics are left out).
      </p>
      {Boolean(error) && (
        <div className="mt-3">
          <ErrorSummary error={error} />
        </div>
      )}
      {!started && !error && (
        <p role="status" className="mt-3 text-sm text-zinc-600">
          Loading metrics…
        </p>
      )}
      {started && points.length === 0 && (
        <p role="status" className="mt-3 text-sm text-zinc-600">
          Collecting: the first point appears after the next scrape, in {METRICS_INTERVAL_MS / 1000} seconds.
        </p>
      )}
      <div className="mt-4 grid grid-cols-1 gap-4 lg:grid-cols-2 xl:grid-cols-3">
        <ChartCard
          testId="chart-rps"
          title="Requests per second"
          summary={points.length ? `Latest: ${fmtRate(rps ?? 0)} req/s` : undefined}
          table={{ columns: ['Time', 'Requests/s'], rows: rows((p) => [formatNumber(p.rps)]) }}
        >
          <LineChart times={times} series={rateSeries} format={fmtRate} ariaLabel={rateLabel} minMax={1} />
        </ChartCard>
        <ChartCard
          testId="chart-errors"
          title="Error rate"
          summary={points.length ? `Latest: 5xx ${show(err5, formatPercent)} · 4xx ${show(err4, formatPercent)}` : undefined}
          legend={[
            { label: '5xx (server errors)', swatchClass: 'bg-red-500' },
            { label: '4xx (client errors)', swatchClass: 'bg-amber-500' },
          ]}
          table={{
            columns: ['Time', '5xx', '4xx'],
            rows: rows((p) => [show(p.errorRate, formatPercent), show(p.clientErrorRate, formatPercent)]),
          }}
        >
          <LineChart times={times} series={errorSeries} format={formatPercent} ariaLabel={errorLabel} minMax={0.05} />
        </ChartCard>
        <ChartCard
          testId="chart-latency"
          title="Latency (p50, p95, p99)"
          summary={points.length ? `Latest: p50 ${show(p50, formatDuration)} · p95 ${show(p95, formatDuration)} · p99 ${show(p99, formatDuration)}` : undefined}
          legend={[
            { label: 'p50', swatchClass: 'bg-emerald-500' },
            { label: 'p95', swatchClass: 'bg-indigo-500' },
            { label: 'p99', swatchClass: 'bg-red-500' },
          ]}
          table={{
            columns: ['Time', 'p50', 'p95', 'p99'],
            rows: rows((p) => [show(p.p50, formatDuration), show(p.p95, formatDuration), show(p.p99, formatDuration)]),
          }}
        >
          <LineChart times={times} series={latencySeries} format={formatDuration} ariaLabel={latencyLabel} minMax={0.001} />
        </ChartCard>
      </div>
    </section>
  );
}
