// The search dialog opened from the header or by shortcut (placeholder until search lands).
import { Dialog } from '@/components/ui/Dialog';

export function SearchDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  return (
    <Dialog open={open} onClose={onClose} title="Search">
      <p className="p-5 text-sm text-zinc-600">Search is coming.</p>
    </Dialog>
  );
}
