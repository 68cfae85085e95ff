// Tests for rates and latency quantiles computed from two Prometheus scrapes.
import { describe, expect, it } from 'vitest';
import { parsePrometheus } from './prometheus';
import {
  bucketDeltas,
  computePoint,
  excludeMetricsScrapes,
  histogramQuantile,
  pushPoint,
  snapshotFrom,
  type Bucket,
} from './metrics';

function scrape(lines: string[], at: number) {
  return snapshotFrom(parsePrometheus(lines.join('\n')), at, { exclude: excludeMetricsScrapes });
}

function histogram(route: string, counts: [string, number][], service = 'gateway'): string[] {
  return counts.map(
    ([le, n]) => `http_request_duration_seconds_bucket{service="${service}",method="GET",route="${route}",le="${le}"} ${n}`,
  );
}

describe('histogramQuantile', () => {
  const buckets: Bucket[] = [
    { le: 0.1, count: 50 },
    { le: 0.2, count: 80 },
    { le: 0.5, count: 100 },
    { le: Infinity, count: 100 },
  ];

  it('interpolates linearly inside the bucket holding the rank', () => {
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.1); // rank 50: end of the first bucket
    expect(histogramQuantile(0.25, buckets)).toBeCloseTo(0.05); // first bucket starts at 0
    expect(histogramQuantile(0.65, buckets)).toBeCloseTo(0.15); // rank 65: half-way through (0.1, 0.2]
    expect(histogramQuantile(0.9, buckets)).toBeCloseTo(0.35);
    expect(histogramQuantile(0.99, buckets)).toBeCloseTo(0.485);
  });

  it('gives the highest finite bound when the rank falls in +Inf', () => {
    const tail = [
      { le: 0.1, count: 1 },
      { le: 1, count: 2 },
      { le: Infinity, count: 10 },
    ];
    expect(histogramQuantile(0.95, tail)).toBe(1);
  });

  it('handles the edge cases like Prometheus', () => {
    expect(histogramQuantile(0.5, [{ le: Infinity, count: 3 }])).toBeNaN();
    expect(histogramQuantile(0.5, [{ le: 1, count: 3 }, { le: 2, count: 3 }])).toBeNaN(); // no +Inf
    expect(histogramQuantile(0.5, [{ le: 1, count: 0 }, { le: Infinity, count: 0 }])).toBeNaN();
    expect(histogramQuantile(-1, buckets)).toBe(-Infinity);
    expect(histogramQuantile(2, buckets)).toBe(Infinity);
    expect(histogramQuantile(0, buckets)).toBe(0);
    // unsorted input and non-monotonic counts are tolerated
    expect(histogramQuantile(0.5, [buckets[3]!, buckets[1]!, buckets[0]!, buckets[2]!])).toBeCloseTo(0.1);
    expect(histogramQuantile(0.5, [{ le: 1, count: 4 }, { le: 2, count: 3 }, { le: Infinity, count: 4 }])).toBeCloseTo(0.5);
  });
});

describe('bucketDeltas', () => {
  it('subtracts per bound, or keeps the current counts after a reset', () => {
    const a = [{ le: 1, count: 2 }, { le: Infinity, count: 4 }];
    const b = [{ le: 1, count: 5 }, { le: Infinity, count: 9 }];
    expect(bucketDeltas(a, b)).toEqual([{ le: 1, count: 3 }, { le: Infinity, count: 5 }]);
    expect(bucketDeltas(b, a)).toEqual(a);
  });
});

describe('snapshotFrom and computePoint', () => {
  const first = [
    '# TYPE http_requests_total counter',
    'http_requests_total{service="gateway",method="GET",route="/api/users/me",status="200"} 10',
    'http_requests_total{service="gateway",method="GET",route="unmatched",status="404"} 2',
    'http_requests_total{service="gateway",method="GET",route="/metrics",status="200"} 7',
    'http_requests_total{service="auth",method="GET",route="/inner",status="200"} 100',
    ...histogram('/api/users/me', [['0.01', 8], ['0.1', 10], ['+Inf', 10]]),
    ...histogram('unmatched', [['0.01', 2], ['0.1', 2], ['+Inf', 2]]),
    ...histogram('/metrics', [['0.01', 7], ['0.1', 7], ['+Inf', 7]]),
  ];
  const second = [
    'http_requests_total{service="gateway",method="GET",route="/api/users/me",status="200"} 40',
    'http_requests_total{service="gateway",method="GET",route="unmatched",status="404"} 7',
    'http_requests_total{service="gateway",method="POST",route="/api/projects",status="500"} 5',
    'http_requests_total{service="gateway",method="GET",route="/metrics",status="200"} 9',
    'http_requests_total{service="auth",method="GET",route="/inner",status="200"} 300',
    ...histogram('/api/users/me', [['0.01', 18], ['0.1', 40], ['+Inf', 40]]),
    ...histogram('unmatched', [['0.01', 7], ['0.1', 7], ['+Inf', 7]]),
    ...histogram('/api/projects', [['0.01', 0], ['0.1', 0], ['+Inf', 5]]),
    ...histogram('/metrics', [['0.01', 9], ['0.1', 9], ['+Inf', 9]]),
  ];

  it('sums the gateway series, without the /metrics scrapes', () => {
    const snap = scrape(first, 0);
    expect(snap).toEqual({
      at: 0,
      total: 12,
      clientErrors: 2,
      serverErrors: 0,
      buckets: [{ le: 0.01, count: 10 }, { le: 0.1, count: 12 }, { le: Infinity, count: 12 }],
    });
  });

  it('computes rate, error shares and quantiles over the interval', () => {
    const point = computePoint(scrape(first, 1_000), scrape(second, 6_000));
    // 30 + 5 + 5 = 40 requests in 5 s
    expect(point.rps).toBeCloseTo(8);
    expect(point.errorRate).toBeCloseTo(5 / 40);
    expect(point.clientErrorRate).toBeCloseTo(5 / 40);
    // deltas: ≤0.01: 10+5 = 15, ≤0.1: 30+5 = 35, +Inf: 40
    expect(point.p50).toBeCloseTo(0.01 + 0.09 * ((20 - 15) / 20)); // 0.0325
    expect(point.p95).toBeCloseTo(0.1); // rank 38 is in +Inf: highest finite bound
    expect(point.p99).toBeCloseTo(0.1);
    expect(point.at).toBe(6_000);
  });

  it('gives null shares and quantiles for an idle interval, and survives a restart', () => {
    const a = scrape(first, 0);
    const idle = computePoint(a, { ...a, at: 5_000 });
    expect(idle).toEqual({ at: 5_000, rps: 0, errorRate: null, clientErrorRate: null, p50: null, p95: null, p99: null });
    const restarted = computePoint(scrape(second, 0), scrape(first, 2_000));
    expect(restarted.rps).toBeCloseTo(6);
    expect(restarted.clientErrorRate).toBeCloseTo(2 / 12);
  });

  it('counts every series when none is labelled gateway', () => {
    const snap = snapshotFrom(parsePrometheus('http_requests_total{code="503"} 4\nhttp_requests_total{code="200"} 6'), 0);
    expect(snap.total).toBe(10);
    expect(snap.serverErrors).toBe(4);
    expect(snap.buckets).toEqual([]);
    expect(computePoint(snap, { ...snap, at: 1000 }).p50).toBeNull();
  });
});

describe('pushPoint', () => {
  it('keeps the newest points only', () => {
    let points: number[] = [];
    for (let i = 0; i < 65; i++) points = pushPoint(points, i, 60);
    expect(points).toHaveLength(60);
    expect(points[0]).toBe(5);
    expect(points[59]).toBe(64);
  });
});
