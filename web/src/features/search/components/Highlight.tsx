// Text with the query's matches emphasised: React elements from `highlightParts`, never HTML.
import { highlightParts } from '../logic';

export function Highlight({ text, query }: { text: string; query: string }) {
  return (
    <>
      {highlightParts(text, query).map((part, i) =>
        part.match ? (
          <mark key={i} className="rounded-sm bg-amber-100 px-px text-zinc-900">
            {part.text}
          </mark>
        ) : (
          part.text
        ),
      )}
    </>
  );
}
