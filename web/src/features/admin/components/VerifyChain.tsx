// "Verify chain": asks the server to check the audit log's hash chain (archives and table) and
// says plainly whether it is intact or where it first breaks.
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { useVerifyChain } from '../api';
import { brokenChainDetails } from '../lib/verify';

export function VerifyChain() {
  const verify = useVerifyChain();
  const result = verify.data;
  return (
    <div className="flex w-full flex-col items-start gap-2 sm:w-auto sm:items-end">
      <Button variant="secondary" busy={verify.isPending} onClick={() => verify.mutate()}>
        Verify chain
      </Button>
      <div aria-live="polite" className="w-full sm:max-w-md">
        {verify.isPending && <p className="text-sm text-zinc-600">Checking every entry…</p>}
        {verify.isError && <ErrorSummary error={verify.error} />}
        {result && !verify.isPending && result.ok && (
          <div data-testid="chain-status" className="rounded-md border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">
            <p role="status" className="font-medium">
              Chain intact: {result.checked} {result.checked === 1 ? 'entry' : 'entries'} checked
            </p>
            {(result.archives_checked ?? 0) > 0 && (
              <p className="mt-0.5 text-xs">
                Including {result.archives_checked} archive{result.archives_checked === 1 ? '' : 's'} in object storage.
              </p>
            )}
          </div>
        )}
        {result && !verify.isPending && !result.ok && (
          <div role="alert" data-testid="chain-status" className="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
            <p className="font-medium">Chain broken: the audit log has been altered.</p>
            {brokenChainDetails(result).map((line) => (
              <p key={line} className="mt-0.5 break-all">
                {line}
              </p>
            ))}
            <p className="mt-0.5 text-xs">{result.checked} entries checked before the break.</p>
          </div>
        )}
      </div>
    </div>
  );
}
