// Profile and preferences (placeholder until its feature lands).
import { usePage } from '@/app/usePage';

export function ProfilePage() {
  const headingRef = usePage('Profile and preferences');
  return (
    <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold tracking-tight text-zinc-900">
      Profile and preferences
    </h1>
  );
}
