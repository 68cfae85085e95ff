// A responsive SVG bar chart for counts per period: y axis with nice ticks, thinned x labels,
// values above the bars when there is room. Colours come from palette classes.
import { useElementWidth } from '../hooks/useElementWidth';
import { formatNumber, linearScale, niceTicks } from '../lib/scale';

export function BarChart({
  labels,
  longLabels,
  values,
  barClass,
  ariaLabel,
  height = 180,
}: {
  labels: string[];
  /** For the bars' tooltips. */
  longLabels: string[];
  values: number[];
  /** e.g. `fill-indigo-500` */
  barClass: string;
  ariaLabel: string;
  height?: number;
}) {
  const [ref, width] = useElementWidth<HTMLDivElement>();
  const ticks = niceTicks(0, Math.max(1, ...values), 4).filter((t) => Number.isInteger(t));
  const yMax = ticks[ticks.length - 1]!;
  const margin = { top: 14, right: 18, bottom: 22, left: Math.max(24, String(formatNumber(yMax)).length * 6.5 + 10) };
  const innerWidth = Math.max(10, width - margin.left - margin.right);
  const innerBottom = height - margin.bottom;
  const y = linearScale([0, yMax], [innerBottom, margin.top]);
  const band = values.length > 0 ? innerWidth / values.length : innerWidth;
  const barWidth = Math.max(1, band * 0.7);
  const labelEvery = Math.max(1, Math.ceil(56 / band));
  const showValues = band >= 18;

  return (
    <div ref={ref} className="w-full">
      <svg role="img" aria-label={ariaLabel} width={width} height={height} viewBox={`0 0 ${width} ${height}`} className="block max-w-full text-[11px]">
        {ticks.map((t) => (
          <g key={t}>
            <line x1={margin.left} x2={width - margin.right} y1={y(t)} y2={y(t)} className={t === 0 ? 'stroke-zinc-300' : 'stroke-zinc-200'} strokeDasharray={t === 0 ? undefined : '2 3'} />
            <text x={margin.left - 6} y={y(t)} dy="0.32em" textAnchor="end" className="fill-zinc-500">
              {formatNumber(t)}
            </text>
          </g>
        ))}
        {values.map((v, i) => {
          const cx = margin.left + band * i + band / 2;
          const top = y(v);
          return (
            <g key={i}>
              <rect x={cx - barWidth / 2} y={top} width={barWidth} height={Math.max(0, innerBottom - top)} rx={Math.min(3, barWidth / 3)} className={barClass}>
                <title>{`${longLabels[i] ?? labels[i]}: ${v}`}</title>
              </rect>
              {showValues && v > 0 && (
                <text x={cx} y={top - 3} textAnchor="middle" className="fill-zinc-700">
                  {formatNumber(v)}
                </text>
              )}
              {(values.length - 1 - i) % labelEvery === 0 && (
                <text x={cx} y={height - 6} textAnchor="middle" className="fill-zinc-500">
                  {labels[i]}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}
