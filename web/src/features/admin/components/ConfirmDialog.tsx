// A yes/no question in the app's modal dialog (used before demoting an admin or deactivating).
import { Button } from '@/components/ui/Button';
import { Dialog } from '@/components/ui/Dialog';

export function ConfirmDialog({
  open,
  title,
  message,
  confirmLabel,
  onConfirm,
  onCancel,
}: {
  open: boolean;
  title: string;
  message: string;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  return (
    <Dialog open={open} onClose={onCancel} title={title}>
      <div className="px-5 pt-2 pb-5">
        <p className="text-sm text-zinc-700">{message}</p>
        <div className="mt-5 flex flex-wrap justify-end gap-2">
          <Button variant="secondary" onClick={onCancel} autoFocus>
            Cancel
          </Button>
          <Button onClick={onConfirm} className="bg-red-600 hover:bg-red-700 active:bg-red-800">
            {confirmLabel}
          </Button>
        </div>
      </div>
    </Dialog>
  );
}
