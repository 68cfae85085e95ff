// A time shown relative to now ("5 minutes ago"), with the exact time in a tooltip.
import { absoluteTime, relativeTime } from '../logic';
import { useNow } from '../useNow';

export function RelativeTime({ iso, className = '' }: { iso: string; className?: string }) {
  const now = useNow();
  // A clock slightly behind the server's would say "in a few seconds": never in the future.
  const text = relativeTime(iso, Math.max(now, Date.parse(iso) || 0));
  return (
    <time dateTime={iso} title={absoluteTime(iso)} className={className}>
      {text}
    </time>
  );
}
