// A responsive SVG line chart over time: y axis with nice ticks, a few time labels, the latest
// value labelled at the end of each line. Colours come from palette classes, so they follow the theme.
import { useElementWidth } from '../hooks/useElementWidth';
import { linePath, linearScale, niceTicks, spreadLabels } from '../lib/scale';

export type LineSeries = {
  label: string;
  /** e.g. `stroke-indigo-500` */
  strokeClass: string;
  /** e.g. `fill-indigo-600` (the end label) */
  textClass: string;
  values: (number | null)[];
};

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

export function LineChart({
  times,
  series,
  format,
  ariaLabel,
  height = 180,
  minMax = 0,
}: {
  /** The x of every value (ms since the epoch). */
  times: number[];
  series: LineSeries[];
  format: (value: number) => string;
  ariaLabel: string;
  height?: number;
  /** The y axis reaches at least this value (e.g. 1 req/s) so an idle chart is not all noise. */
  minMax?: number;
}) {
  const [ref, width] = useElementWidth<HTMLDivElement>();
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const ticks = niceTicks(Math.min(0, ...all), Math.max(minMax, ...all), 4);
  const yMin = ticks[0]!;
  const yMax = ticks[ticks.length - 1]!;
  const labelWidth = Math.max(...ticks.map((t) => format(t).length)) * 6.5 + 10;
  const margin = { top: 10, right: 46, bottom: 22, left: Math.max(28, labelWidth) };
  const innerRight = width - margin.right;
  const innerBottom = height - margin.bottom;
  const last = times[times.length - 1] ?? Date.now();
  const first = times.length > 1 ? times[0]! : last - 5_000;
  const x = linearScale([first, last], [margin.left, innerRight]);
  const y = linearScale([yMin, yMax], [innerBottom, margin.top]);
  const xTickCount = width < 420 ? 2 : 4;
  // The latest value of each line, labelled at its end (labels pushed apart when lines meet).
  const ends = series.map((s) => {
    const v = s.values[s.values.length - 1];
    return v !== null && v !== undefined && Number.isFinite(v) ? v : null;
  });
  const endYs = spreadLabels(
    ends.map((v) => (v === null ? innerBottom : y(v))),
    12,
    margin.top,
    innerBottom,
  );
  const xTicks = times.length > 1 ? Array.from({ length: xTickCount + 1 }, (_, i) => first + ((last - first) * i) / xTickCount) : [];

  return (
    <div ref={ref} className="w-full">
      <svg role="img" aria-label={ariaLabel} width={width} height={height} viewBox={`0 0 ${width} ${height}`} className="block max-w-full overflow-visible text-[11px]">
        {ticks.map((t) => (
          <g key={t}>
            <line x1={margin.left} x2={innerRight} y1={y(t)} y2={y(t)} className={t === yMin ? 'stroke-zinc-300' : 'stroke-zinc-200'} strokeDasharray={t === yMin ? undefined : '2 3'} />
            <text x={margin.left - 6} y={y(t)} dy="0.32em" textAnchor="end" className="fill-zinc-500">
              {format(t)}
            </text>
          </g>
        ))}
        {xTicks.map((t, i) => (
          <text
            key={i}
            x={x(t)}
            y={height - 6}
            textAnchor={i === 0 ? 'start' : i === xTicks.length - 1 ? 'end' : 'middle'}
            className="fill-zinc-500"
          >
            {timeFormat.format(t)}
          </text>
        ))}
        {series.map((s) => {
          const pts = s.values.map((v, i) => ({ x: x(times[i] ?? last), y: v === null || !Number.isFinite(v) ? null : y(v) }));
          const si = series.indexOf(s);
          const lastValue = ends[si] ?? null;
          return (
            <g key={s.label}>
              <path d={linePath(pts)} fill="none" strokeWidth={2} strokeLinejoin="round" strokeLinecap="round" className={s.strokeClass} />
              {/* Single points (a line with one end) still show as dots. */}
              {pts.map((p, i) =>
                p.y !== null && (pts[i - 1]?.y ?? null) === null && (pts[i + 1]?.y ?? null) === null ? (
                  <circle key={i} cx={p.x} cy={p.y} r={2.5} className={`${s.textClass} ${s.strokeClass}`} />
                ) : null,
              )}
              {lastValue !== null && (
                <text x={innerRight + 4} y={endYs[si]} dy="0.32em" className={`${s.textClass} font-medium`}>
                  {format(lastValue)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}
