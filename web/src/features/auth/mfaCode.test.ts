// Tests for tidying typed two-factor codes.
import { describe, expect, it } from 'vitest';
import { normalizeMfaCode } from './mfaCode';

describe('normalizeMfaCode', () => {
  it('drops spaces inside and around a TOTP code', () => {
    expect(normalizeMfaCode(' 123 456 ')).toBe('123456');
    expect(normalizeMfaCode('123\u00a0456')).toBe('123456');
  });
  it('keeps recovery codes as typed otherwise', () => {
    expect(normalizeMfaCode('abcd-EFGH-1234')).toBe('abcd-EFGH-1234');
  });
  it('returns an empty string for blank input', () => {
    expect(normalizeMfaCode('  \t')).toBe('');
  });
});
