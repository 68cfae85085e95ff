// Search (placeholder until its feature lands).
import { usePage } from '@/app/usePage';

export function SearchPage() {
  const headingRef = usePage('Search');
  return (
    <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
      Search
    </h1>
  );
}
