// Tests for reading the token of a mailed link from the URL fragment.
import { describe, expect, it } from 'vitest';
import { parseFragmentToken } from './fragment';

describe('parseFragmentToken', () => {
  it('reads token= with or without the leading #', () => {
    expect(parseFragmentToken('token=bWzz2a24QSMf-_p20')).toBe('bWzz2a24QSMf-_p20');
    expect(parseFragmentToken('#token=abc')).toBe('abc');
  });

  it('finds the token among other parameters', () => {
    expect(parseFragmentToken('a=1&token=xyz&b=2')).toBe('xyz');
  });

  it('percent-decodes but keeps a plus sign', () => {
    expect(parseFragmentToken('token=a%2Fb%3D')).toBe('a/b=');
    expect(parseFragmentToken('token=a+b')).toBe('a+b');
  });

  it('returns null when missing, empty or malformed', () => {
    expect(parseFragmentToken('')).toBeNull();
    expect(parseFragmentToken('#')).toBeNull();
    expect(parseFragmentToken('token=')).toBeNull();
    expect(parseFragmentToken('token')).toBeNull();
    expect(parseFragmentToken('tokens=abc')).toBeNull();
    expect(parseFragmentToken('token=%E0%A4%A')).toBeNull();
    expect(parseFragmentToken('token=a%20b')).toBeNull();
  });

  it('ignores surrounding whitespace from a copied link', () => {
    expect(parseFragmentToken('token=abc%20')).toBe('abc');
  });
});
