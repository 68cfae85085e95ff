// Unit tests of the panel's URL building, upload progress and Content-Disposition parsing.
import { describe, expect, it } from 'vitest';
import { pageUrl } from './api';
import { progressPercent } from './upload';
import { dispositionFileName } from './download';

describe('pageUrl', () => {
  it('adds the limit and the cursor when there is one', () => {
    expect(pageUrl('/api/tasks/t/comments', null, 50)).toBe('/api/tasks/t/comments?limit=50');
    expect(pageUrl('/api/tasks/t/comments', 'a b+c', 50)).toBe('/api/tasks/t/comments?limit=50&cursor=a+b%2Bc');
  });
});

describe('progressPercent', () => {
  it('is a whole percentage, or null while unknown', () => {
    expect(progressPercent(null)).toBeNull();
    expect(progressPercent({ loaded: 5, total: 0 })).toBeNull();
    expect(progressPercent({ loaded: 0, total: 10 })).toBe(0);
    expect(progressPercent({ loaded: 333, total: 1000 })).toBe(33);
    expect(progressPercent({ loaded: 12, total: 10 })).toBe(100);
  });
});

describe('dispositionFileName', () => {
  it('prefers filename* (UTF-8) over filename', () => {
    expect(dispositionFileName(`attachment; filename="hello.txt"; filename*=UTF-8''h%C3%A9llo%20w.txt`)).toBe('héllo w.txt');
  });
  it('reads quoted and bare filenames', () => {
    expect(dispositionFileName('attachment; filename="a \\"b\\".txt"')).toBe('a "b".txt');
    expect(dispositionFileName('attachment; filename=plain.pdf')).toBe('plain.pdf');
  });
  it('returns null without a name', () => {
    expect(dispositionFileName(null)).toBeNull();
    expect(dispositionFileName('attachment')).toBeNull();
  });
});
