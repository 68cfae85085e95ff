// Project settings (placeholder until its feature lands).
import { usePage } from '@/app/usePage';

export function ProjectSettingsPage(props: { projectId: string }) {
  void props;
  const headingRef = usePage('Project settings');
  return (
    <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
      Project settings
    </h1>
  );
}
