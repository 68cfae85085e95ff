// Tests for the chart scale, tick and format helpers.
import { describe, expect, it } from 'vitest';
import { spreadLabels, formatDuration, formatNumber, formatPercent, linePath, linearScale, niceStep, niceTicks } from './scale';

describe('niceStep and niceTicks', () => {
  it('picks 1, 2, 2.5 or 5 × 10ⁿ steps', () => {
    expect(niceStep(10, 4)).toBe(2.5);
    expect(niceStep(100, 5)).toBe(20);
    expect(niceStep(0.9, 4)).toBe(0.25);
    expect(niceStep(7, 4)).toBe(2);
    expect(niceStep(0, 4)).toBe(1);
  });

  it('covers the data from zero', () => {
    expect(niceTicks(0, 7.3)).toEqual([0, 2, 4, 6, 8]);
    expect(niceTicks(3, 100)).toEqual([0, 25, 50, 75, 100]);
    expect(niceTicks(0, 0.03)).toEqual([0, 0.01, 0.02, 0.03]);
    expect(niceTicks(0, 0.3)).toEqual([0, 0.1, 0.2, 0.3]);
  });

  it('gives a unit range when there is nothing to show', () => {
    expect(niceTicks(0, 0)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(niceTicks(Number.NaN, Number.NaN)).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });

  it('includes negative data', () => {
    expect(niceTicks(-5, 5, 4)).toEqual([-5, -2.5, 0, 2.5, 5]);
  });
});

describe('linearScale', () => {
  it('maps a domain onto a range, inverted axes too', () => {
    const y = linearScale([0, 10], [200, 0]);
    expect(y(0)).toBe(200);
    expect(y(5)).toBe(100);
    expect(y(10)).toBe(0);
    expect(linearScale([3, 3], [10, 20])(3)).toBe(10);
  });
});

describe('linePath', () => {
  it('breaks the line at missing values', () => {
    expect(
      linePath([
        { x: 0, y: 1 },
        { x: 1, y: 2 },
        { x: 2, y: null },
        { x: 3, y: 4 },
        { x: 4, y: 5.25 },
      ]),
    ).toBe('M0.0,1.0L1.0,2.0M3.0,4.0L4.0,5.3');
    expect(linePath([])).toBe('');
  });
});

describe('formats', () => {
  it('formats numbers compactly', () => {
    expect(formatNumber(0)).toBe('0');
    expect(formatNumber(12)).toBe('12');
    expect(formatNumber(1.25)).toBe('1.3');
    expect(formatNumber(0.256)).toBe('0.26');
    expect(formatNumber(12.34)).toBe('12.3');
    expect(formatNumber(250.4)).toBe('250');
    expect(formatNumber(12_345)).toBe('12.3k');
    expect(formatNumber(2_500_000)).toBe('2.5M');
    expect(formatNumber(Number.NaN)).toBe('–');
  });

  it('formats shares as percentages', () => {
    expect(formatPercent(0)).toBe('0%');
    expect(formatPercent(0.125)).toBe('13%');
    expect(formatPercent(0.0042)).toBe('0.42%');
    expect(formatPercent(0.05)).toBe('5%');
    expect(formatPercent(1)).toBe('100%');
  });

  it('formats durations with a unit', () => {
    expect(formatDuration(0)).toBe('0 ms');
    expect(formatDuration(0.00035)).toBe('350 µs');
    expect(formatDuration(0.0125)).toBe('12.5 ms');
    expect(formatDuration(0.25)).toBe('250 ms');
    expect(formatDuration(1.25)).toBe('1.3 s');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('–');
  });
});

describe('spreadLabels', () => {
  it('leaves distant labels alone', () => {
    expect(spreadLabels([10, 50, 90], 12, 0, 100)).toEqual([10, 50, 90]);
  });

  it('pushes close labels apart, keeping their order and input positions', () => {
    expect(spreadLabels([52, 50, 51], 10, 0, 100)).toEqual([70, 50, 60]);
  });

  it('stays inside the bounds', () => {
    expect(spreadLabels([98, 99, 100], 10, 0, 100)).toEqual([80, 90, 100]);
    expect(spreadLabels([0, 0], 10, 5, 100)).toEqual([5, 15]);
    expect(spreadLabels([], 10, 0, 100)).toEqual([]);
  });
});
