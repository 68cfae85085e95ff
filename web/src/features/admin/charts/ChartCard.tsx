// The frame of one chart: a heading, a legend, the SVG drawing, and its numbers as a table for
// screen readers (and anyone who wants the exact values, behind "Show data").
import { useId, type ReactNode } from 'react';

export type LegendItem = { label: string; swatchClass: string };

export type TableData = { columns: string[]; rows: (string | number)[][] };

export function ChartCard({
  title,
  legend,
  summary,
  table,
  children,
  aside,
  testId,
}: {
  title: string;
  legend?: LegendItem[];
  /** One sentence with the latest values, shown under the heading. */
  summary?: string;
  table: TableData;
  children: ReactNode;
  aside?: ReactNode;
  testId?: string;
}) {
  const headingId = useId();
  return (
    <section aria-labelledby={headingId} data-testid={testId} className="min-w-0 rounded-xl border border-zinc-200 bg-white p-4 shadow-sm">
      <div className="flex flex-wrap items-baseline justify-between gap-x-4 gap-y-1">
        <h3 id={headingId} className="text-sm font-semibold text-zinc-900">
          {title}
        </h3>
        {aside}
      </div>
      {summary && <p className="mt-0.5 text-xs text-zinc-600">{summary}</p>}
      {legend && legend.length > 1 && (
        <ul aria-label={`${title} legend`} className="mt-2 flex flex-wrap gap-x-4 gap-y-1 text-xs text-zinc-700">
          {legend.map((item) => (
            <li key={item.label} className="inline-flex items-center gap-1.5">
              <span aria-hidden="true" className={`inline-block h-0.5 w-4 rounded ${item.swatchClass}`} />
              {item.label}
            </li>
          ))}
        </ul>
      )}
      <div className="mt-2">{children}</div>
      <details className="mt-2 text-xs text-zinc-700">
        <summary className="cursor-pointer select-none rounded text-zinc-600 hover:text-zinc-900">Show data</summary>
        {table.rows.length === 0 ? (
          <p className="mt-2 text-zinc-600">No data yet.</p>
        ) : (
          <div className="relative mt-2 max-h-60 overflow-auto rounded border border-zinc-200">
            <table className="w-full text-left tabular-nums">
              <caption className="sr-only">{title}</caption>
              <thead className="sticky top-0 bg-zinc-50">
                <tr>
                  {table.columns.map((c) => (
                    <th key={c} scope="col" className="px-2 py-1 font-medium text-zinc-700">
                      {c}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody className="divide-y divide-zinc-100">
                {table.rows.map((row, i) => (
                  <tr key={i}>
                    {row.map((cell, j) =>
                      j === 0 ? (
                        <th key={j} scope="row" className="px-2 py-1 font-normal text-zinc-700">
                          {cell}
                        </th>
                      ) : (
                        <td key={j} className="px-2 py-1">
                          {cell}
                        </td>
                      ),
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </details>
    </section>
  );
}
