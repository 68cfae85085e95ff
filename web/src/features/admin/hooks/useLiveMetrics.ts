// Polls /metrics every few seconds while the tab is visible and keeps the last points computed
// from successive scrapes (request rate, error shares, latency quantiles).
import { useEffect, useRef, useState } from 'react';
import { useRequiredSession } from '@/features/auth/session';
import { fetchMetrics } from '../api';
import { computePoint, excludeMetricsScrapes, pushPoint, snapshotFrom, type MetricsPoint, type Snapshot } from '../lib/metrics';
import { parsePrometheus } from '../lib/prometheus';

export const METRICS_INTERVAL_MS = 5_000;
export const METRICS_POINTS = 60;

export type LiveMetrics = {
  points: MetricsPoint[];
  /** The latest scrape failed (the charts keep what they have). */
  error: unknown;
  /** False while the tab is hidden. */
  running: boolean;
  /** At least one scrape has answered. */
  started: boolean;
};

export function useLiveMetrics(intervalMs = METRICS_INTERVAL_MS): LiveMetrics {
  const { accessToken } = useRequiredSession();
  const tokenRef = useRef(accessToken);
  tokenRef.current = accessToken;
  const previous = useRef<Snapshot | null>(null);
  const [points, setPoints] = useState<MetricsPoint[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [running, setRunning] = useState(() => typeof document === 'undefined' || !document.hidden);
  const [started, setStarted] = useState(false);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let controller: AbortController | null = null;
    let stopped = false;

    async function scrape() {
      controller = new AbortController();
      try {
        const text = await fetchMetrics(tokenRef.current, controller.signal);
        const snapshot = snapshotFrom(parsePrometheus(text), Date.now(), { exclude: excludeMetricsScrapes });
        if (previous.current) {
          const point = computePoint(previous.current, snapshot);
          setPoints((list) => pushPoint(list, point, METRICS_POINTS));
        }
        previous.current = snapshot;
        setError(null);
        setStarted(true);
      } catch (e) {
        if (controller.signal.aborted) return;
        setError(e);
      }
      schedule();
    }

    function schedule() {
      clearTimeout(timer);
      if (!stopped && !document.hidden) timer = setTimeout(() => void scrape(), intervalMs);
    }

    function onVisibility() {
      setRunning(!document.hidden);
      if (document.hidden) {
        clearTimeout(timer);
        controller?.abort();
      } else {
        // Rates over the hidden time would average it away: start the interval afresh.
        previous.current = null;
        void scrape();
      }
    }

    document.addEventListener('visibilitychange', onVisibility);
    if (!document.hidden) void scrape();
    return () => {
      stopped = true;
      clearTimeout(timer);
      controller?.abort();
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [intervalMs]);

  return { points, error, running, started };
}
