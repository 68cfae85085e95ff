// Tests for sending a single-use verification token only once.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { resetVerifyAttempts, verifyOnce } from './verifyOnce';

afterEach(resetVerifyAttempts);

describe('verifyOnce', () => {
  it('calls the server once per token and shares the answer', async () => {
    const verify = vi.fn(async () => undefined);
    const a = verifyOnce('t1', verify);
    const b = verifyOnce('t1', verify);
    expect(a).toBe(b);
    await a;
    expect(verify).toHaveBeenCalledTimes(1);
    await verifyOnce('t2', verify);
    expect(verify).toHaveBeenCalledTimes(2);
  });

  it('shares a failure too (a used token stays used)', async () => {
    const verify = vi.fn(async () => {
      throw new Error('400');
    });
    await expect(verifyOnce('bad', verify)).rejects.toThrow('400');
    await expect(verifyOnce('bad', verify)).rejects.toThrow('400');
    expect(verify).toHaveBeenCalledTimes(1);
  });
});
