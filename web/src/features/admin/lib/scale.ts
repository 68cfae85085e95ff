// Helpers for the hand-written SVG charts: "nice" axis ticks, linear scales and value formats.

/** A step of 1, 2, 2.5 or 5 × 10ⁿ that splits `span` into about `count` parts. */
export function niceStep(span: number, count: number): number {
  if (!(span > 0) || !(count > 0)) return 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

/** Rounds away floating-point noise (0.30000000000000004 → 0.3). */
function clean(value: number): number {
  return Number.parseFloat(value.toPrecision(12));
}

/**
 * Ticks from 0 (or below, for negative data) up to a nice maximum covering `max`, about `count`
 * of them. An empty or zero range gives [0, 1].
 */
export function niceTicks(min: number, max: number, count = 4): number[] {
  const lo = Math.min(0, Number.isFinite(min) ? min : 0);
  let hi = Number.isFinite(max) ? max : 0;
  if (hi <= lo) hi = lo + 1;
  const step = niceStep(hi - lo, count);
  const start = Math.floor(lo / step) * step;
  const ticks: number[] = [];
  for (let v = start; v < hi + step * 0.999; v += step) ticks.push(clean(v));
  if (ticks.length < 2) ticks.push(clean(start + step));
  return ticks;
}

/** A linear map from `domain` to `range` (a degenerate domain maps to the range's start). */
export function linearScale(domain: [number, number], range: [number, number]): (value: number) => number {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  if (d1 === d0) return () => r0;
  const k = (r1 - r0) / (d1 - d0);
  return (value) => r0 + (value - d0) * k;
}

/** The SVG path of a line through the points, broken where a value is missing. */
export function linePath(points: { x: number; y: number | null }[]): string {
  let path = '';
  let pen = false;
  for (const { x, y } of points) {
    if (y === null || !Number.isFinite(y)) {
      pen = false;
      continue;
    }
    path += `${pen ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
    pen = true;
  }
  return path;
}

/** A compact number: 0, 12, 1.5, 0.25, 12.3k. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1_000_000) return `${clean(value / 1_000_000).toFixed(abs >= 10_000_000 ? 0 : 1)}M`;
  if (abs >= 10_000) return `${(value / 1000).toFixed(abs >= 100_000 ? 0 : 1)}k`;
  if (abs >= 100 || Number.isInteger(value)) return String(Math.round(value));
  if (abs >= 10) return value.toFixed(1).replace(/\.0$/, '');
  return String(clean(Number(value.toPrecision(2))));
}

/** A share 0–1 as a percentage: 0%, 12.5%, 0.4%. */
export function formatPercent(share: number): string {
  if (!Number.isFinite(share)) return '–';
  const pct = share * 100;
  if (pct === 0) return '0%';
  if (pct >= 10) return `${Math.round(pct)}%`;
  return `${clean(Number(pct.toPrecision(2)))}%`;
}

/** A duration in seconds with a readable unit: 350 µs, 12 ms, 1.2 s. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds === 0) return '0 ms';
  if (seconds < 0.001) return `${formatNumber(Math.round(seconds * 1_000_000))} µs`;
  if (seconds < 1) return `${formatNumber(seconds * 1000)} ms`;
  return `${formatNumber(seconds)} s`;
}

/**
 * Moves label positions apart so none are closer than `gap` (keeping their order and staying
 * within [min, max]): the end labels of lines that finish close together stay readable.
 */
export function spreadLabels(positions: number[], gap: number, min: number, max: number): number[] {
  const order = positions.map((y, i) => ({ y, i })).sort((a, b) => a.y - b.y);
  const placed = order.map((o) => o.y);
  for (let k = 1; k < placed.length; k++) placed[k] = Math.max(placed[k]!, placed[k - 1]! + gap);
  // Pushed past the bottom: shift the stack up, then keep the gaps from the top.
  const overflow = (placed[placed.length - 1] ?? max) - max;
  if (overflow > 0) for (let k = 0; k < placed.length; k++) placed[k]! -= overflow;
  if (placed.length > 0 && placed[0]! < min) {
    placed[0] = min;
    for (let k = 1; k < placed.length; k++) placed[k] = Math.max(placed[k]!, placed[k - 1]! + gap);
  }
  const out = new Array<number>(positions.length);
  order.forEach((o, k) => {
    out[o.i] = placed[k]!;
  });
  return out;
}
