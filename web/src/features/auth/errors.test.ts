// Tests for rewording server errors.
import { describe, expect, it } from 'vitest';
import { ApiError, errorMessage } from '@/lib/api';
import { withDetail } from './errors';

describe('withDetail', () => {
  it('keeps status, request id and Retry-After, and replaces the detail', () => {
    const original = new ApiError({ type: 't', title: 'Unauthorized', status: 401, detail: 'invalid credentials', request_id: 'r1' }, 7);
    const reworded = withDetail(original, 'Wrong password.');
    expect(reworded.status).toBe(401);
    expect(reworded.requestId).toBe('r1');
    expect(reworded.retryAfter).toBe(7);
    expect(errorMessage(reworded)).toBe('Wrong password.');
  });
});
