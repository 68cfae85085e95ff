// Turns Prometheus scrapes of the Trellis server into dashboard points: request rate, error
// shares and latency quantiles, computed from the difference between two successive scrapes
// (the way Prometheus's rate() and histogram_quantile() do).
import type { Exposition, Labels, Sample } from './prometheus';

export const REQUESTS_METRIC = 'http_requests_total';
export const DURATION_METRIC = 'http_request_duration_seconds';

/** One cumulative histogram bucket: observations ≤ `le`. */
export type Bucket = { le: number; count: number };

/** What one scrape says, summed over every counted series. */
export type Snapshot = {
  /** When the scrape was taken (ms since the epoch). */
  at: number;
  total: number;
  clientErrors: number;
  serverErrors: number;
  /** Cumulative buckets summed over the series, sorted by `le`, ending with +Inf. */
  buckets: Bucket[];
};

/** One point of the live charts (null when the interval had no requests to measure). */
export type MetricsPoint = {
  at: number;
  rps: number;
  /** Share (0–1) of requests answered 5xx. */
  errorRate: number | null;
  /** Share (0–1) of requests answered 4xx. */
  clientErrorRate: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
};

export type SnapshotOptions = {
  /** Leaves out series for which this answers true (e.g. the dashboard's own scrapes). */
  exclude?: (labels: Labels) => boolean;
};

/** Skips the dashboard's own polling of /metrics so the charts show the rest of the traffic. */
export const excludeMetricsScrapes = (labels: Labels): boolean => labels.route === '/metrics';

/**
 * The series to count: when some carry `service="gateway"`, only those (in a split deployment the
 * gateway sees every request once; inner services would count them again).
 */
function counted(samples: Sample[], exclude?: (labels: Labels) => boolean): Sample[] {
  const kept = exclude ? samples.filter((s) => !exclude(s.labels)) : samples;
  const gateway = kept.filter((s) => s.labels.service === 'gateway');
  return gateway.length > 0 ? gateway : kept;
}

function parseLe(le: string | undefined): number {
  if (le === undefined) return Number.NaN;
  if (le === '+Inf' || le === 'Inf') return Number.POSITIVE_INFINITY;
  return Number(le);
}

/** Sums a scrape's request counter and latency histogram into a Snapshot. */
export function snapshotFrom(exposition: Exposition, at: number, options: SnapshotOptions = {}): Snapshot {
  const requests = counted(
    exposition.samples.filter((s) => s.name === REQUESTS_METRIC),
    options.exclude,
  );
  let total = 0;
  let clientErrors = 0;
  let serverErrors = 0;
  for (const s of requests) {
    if (!Number.isFinite(s.value)) continue;
    total += s.value;
    const status = s.labels.status ?? s.labels.code ?? '';
    if (status.startsWith('4')) clientErrors += s.value;
    else if (status.startsWith('5')) serverErrors += s.value;
  }
  const byLe = new Map<number, number>();
  for (const s of counted(
    exposition.samples.filter((x) => x.name === `${DURATION_METRIC}_bucket`),
    options.exclude,
  )) {
    const le = parseLe(s.labels.le);
    if (Number.isNaN(le) || !Number.isFinite(s.value)) continue;
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  const buckets = [...byLe.entries()].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
  return { at, total, clientErrors, serverErrors, buckets };
}

/** A counter's increase between two readings; a drop means the process restarted (reset). */
export function counterDelta(previous: number, current: number): number {
  return current >= previous ? current - previous : current;
}

/**
 * The φ-quantile of cumulative buckets, as Prometheus's histogram_quantile(): linear
 * interpolation inside the bucket holding the rank; the lowest bucket starts at 0 (when its
 * bound is positive); a rank in the +Inf bucket gives the highest finite bound. NaN when there
 * are no observations or no +Inf bucket.
 */
export function histogramQuantile(q: number, input: Bucket[]): number {
  if (Number.isNaN(q)) return Number.NaN;
  if (q < 0) return Number.NEGATIVE_INFINITY;
  if (q > 1) return Number.POSITIVE_INFINITY;
  const buckets = [...input].sort((a, b) => a.le - b.le);
  if (buckets.length < 2) return Number.NaN;
  const last = buckets[buckets.length - 1]!;
  if (last.le !== Number.POSITIVE_INFINITY) return Number.NaN;
  // Cumulative counts must not fall (they can, slightly, when series are read mid-update).
  for (let i = 1; i < buckets.length; i++) {
    if (buckets[i]!.count < buckets[i - 1]!.count) buckets[i] = { ...buckets[i]!, count: buckets[i - 1]!.count };
  }
  const observations = last.count;
  if (observations === 0) return Number.NaN;
  let rank = q * observations;
  let b = buckets.findIndex((bucket) => bucket.count >= rank);
  if (b === -1) b = buckets.length - 1;
  if (b === buckets.length - 1) return buckets[buckets.length - 2]!.le;
  if (b === 0 && buckets[0]!.le <= 0) return buckets[0]!.le;
  let start = 0;
  let end = buckets[b]!.le;
  let count = buckets[b]!.count;
  if (b > 0) {
    start = buckets[b - 1]!.le;
    count -= buckets[b - 1]!.count;
    rank -= buckets[b - 1]!.count;
  }
  if (count === 0) return end;
  return start + (end - start) * (rank / count);
}

/** The buckets' increase between two snapshots (all of `current` after a reset). */
export function bucketDeltas(previous: Bucket[], current: Bucket[]): Bucket[] {
  const before = new Map(previous.map((b) => [b.le, b.count]));
  const reset = current.some((b) => b.count < (before.get(b.le) ?? 0));
  return current.map((b) => ({ le: b.le, count: reset ? b.count : b.count - (before.get(b.le) ?? 0) }));
}

const finiteOrNull = (value: number): number | null => (Number.isFinite(value) ? value : null);

/** The chart point for the interval between two snapshots. */
export function computePoint(previous: Snapshot, current: Snapshot): MetricsPoint {
  const seconds = Math.max((current.at - previous.at) / 1000, 0.001);
  const reset = current.total < previous.total;
  const requests = reset ? current.total : current.total - previous.total;
  const client = reset ? current.clientErrors : counterDelta(previous.clientErrors, current.clientErrors);
  const server = reset ? current.serverErrors : counterDelta(previous.serverErrors, current.serverErrors);
  const deltas = bucketDeltas(previous.buckets, current.buckets);
  return {
    at: current.at,
    rps: requests / seconds,
    errorRate: requests > 0 ? server / requests : null,
    clientErrorRate: requests > 0 ? client / requests : null,
    p50: finiteOrNull(histogramQuantile(0.5, deltas)),
    p95: finiteOrNull(histogramQuantile(0.95, deltas)),
    p99: finiteOrNull(histogramQuantile(0.99, deltas)),
  };
}

/** Appends a point, keeping only the newest `max`. */
export function pushPoint<T>(points: T[], point: T, max = 60): T[] {
  const next = [...points, point];
  return next.length > max ? next.slice(next.length - max) : next;
}
