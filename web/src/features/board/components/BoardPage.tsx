// Board (placeholder until its feature lands).
import { usePage } from '@/app/usePage';

export function BoardPage(props: { projectId: string; view: 'board' | 'list'; taskId?: string }) {
  void props;
  const headingRef = usePage('Board');
  return (
    <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
      Board
    </h1>
  );
}
