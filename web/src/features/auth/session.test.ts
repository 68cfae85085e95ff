// Tests for the session's timing helpers: when to refresh, sharing one refresh, the cookie hint.
import { describe, expect, it } from 'vitest';
import { acrossTabs, hasSessionHint, refreshDelay, REFRESH_AHEAD_MS, singleFlight } from './session';

describe('refreshDelay', () => {
  it('renews a minute before expiry', () => {
    expect(refreshDelay(1_000_000 + 900_000, 1_000_000)).toBe(900_000 - REFRESH_AHEAD_MS);
  });
  it('never schedules sooner than five seconds', () => {
    expect(refreshDelay(1_000, 1_000_000)).toBe(5_000);
  });
});

describe('singleFlight', () => {
  it('shares one call between concurrent callers, then allows a new one', async () => {
    let calls = 0;
    let release: (v: number) => void = () => {};
    const run = singleFlight(() => {
      calls += 1;
      return new Promise<number>((resolve) => {
        release = resolve;
      });
    });
    const a = run();
    const b = run();
    expect(calls).toBe(1);
    release(7);
    expect(await a).toBe(7);
    expect(await b).toBe(7);
    const c = run();
    expect(calls).toBe(2);
    release(8);
    expect(await c).toBe(8);
  });
});

describe('hasSessionHint', () => {
  it('finds the hint among other cookies', () => {
    expect(hasSessionHint('a=1; __Host-trellis-session=1; b=2')).toBe(true);
    expect(hasSessionHint('')).toBe(false);
    expect(hasSessionHint('__Host-trellis-session=')).toBe(false);
    expect(hasSessionHint('x__Host-trellis-session=1')).toBe(false);
  });
});

describe('acrossTabs', () => {
  it('runs the refresh under the named lock when the browser has Web Locks', async () => {
    const names: string[] = [];
    const locks = {
      request: async (name: string, fn: () => Promise<unknown>) => {
        names.push(name);
        return fn();
      },
    } as unknown as LockManager;
    expect(await acrossTabs(async () => 5, locks)).toBe(5);
    expect(names).toEqual(['trellis-refresh']);
  });
  it('runs it directly without them', async () => {
    expect(await acrossTabs(async () => 6, undefined)).toBe(6);
  });
});
