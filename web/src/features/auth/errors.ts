// Rewording server errors for people: the same ApiError (status, request id) with a clearer detail.
import { ApiError } from '@/lib/api';

export function withDetail(error: ApiError, detail: string): ApiError {
  return new ApiError({ ...error.problem, detail }, error.retryAfter);
}
