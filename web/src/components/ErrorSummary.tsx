// Shows an API error above a form: the problem's detail, leftover field errors
// and the request id (useful when reporting a problem).
import { ApiError, errorMessage } from '@/lib/api';
import { Alert } from './ui/Alert';

export function ErrorSummary({ error, otherErrors = [] }: { error: unknown; otherErrors?: string[] }) {
  if (!error) return null;
  const requestId = error instanceof ApiError ? error.requestId : undefined;
  return (
    <Alert tone="error" footnote={requestId ? `Request ID: ${requestId}` : undefined}>
      <p>{errorMessage(error)}</p>
      {otherErrors.length > 0 && (
        <ul className="mt-1 list-disc pl-5">
          {otherErrors.map((message) => (
            <li key={message}>{message}</li>
          ))}
        </ul>
      )}
    </Alert>
  );
}
