// Tests for the password rule: 15–256 Unicode code points, no composition rules.
import { describe, expect, it } from 'vitest';
import { checkPassword, passwordError, passwordHint, passwordLength, PASSWORD_MAX, PASSWORD_MIN } from './password';

describe('passwordLength', () => {
  it('counts code points, not UTF-16 units', () => {
    expect(passwordLength('abc')).toBe(3);
    expect(passwordLength('🔒🔒')).toBe(2); // 4 UTF-16 units
    expect('🔒🔒'.length).toBe(4);
    expect(passwordLength('日本語')).toBe(3);
  });
});

describe('checkPassword', () => {
  it('classifies by length only', () => {
    expect(checkPassword('').status).toBe('empty');
    expect(checkPassword('a'.repeat(PASSWORD_MIN - 1)).status).toBe('too-short');
    expect(checkPassword('a'.repeat(PASSWORD_MIN)).status).toBe('ok');
    expect(checkPassword('a'.repeat(PASSWORD_MAX)).status).toBe('ok');
    expect(checkPassword('a'.repeat(PASSWORD_MAX + 1)).status).toBe('too-long');
  });

  it('uses 15 and 256 as the limits', () => {
    expect(PASSWORD_MIN).toBe(15);
    expect(PASSWORD_MAX).toBe(256);
  });

  it('has no composition rules: all lowercase letters are fine', () => {
    expect(checkPassword('correcthorsebatterystaple').ok).toBe(true);
  });

  it('counts emoji as one character each at the boundary', () => {
    // 14 emoji = 28 UTF-16 units, but still too short.
    const fourteen = '🌱'.repeat(14);
    expect(checkPassword(fourteen)).toMatchObject({ length: 14, status: 'too-short', remaining: 1 });
    expect(checkPassword(fourteen + '🌱').ok).toBe(true);
    // 256 emoji are allowed even though .length is 512.
    expect(checkPassword('🌱'.repeat(256)).ok).toBe(true);
    expect(checkPassword('🌱'.repeat(257))).toMatchObject({ status: 'too-long', excess: 1 });
  });
});

describe('messages', () => {
  it('tells how many characters are still needed', () => {
    expect(passwordHint(checkPassword('a'.repeat(12)))).toBe('3 more characters needed (12 of 15).');
    expect(passwordHint(checkPassword('a'.repeat(14)))).toBe('1 more character needed (14 of 15).');
    expect(passwordHint(checkPassword('a'.repeat(20)))).toBe('Long enough (20 characters).');
    expect(passwordHint(checkPassword('a'.repeat(258)))).toBe('2 characters too long (at most 256).');
    expect(passwordHint(checkPassword(''))).toMatch(/at least 15 characters/);
  });

  it('blocks submission only when the rule is broken', () => {
    expect(passwordError(checkPassword(''))).toBe('Enter a password.');
    expect(passwordError(checkPassword('short'))).toMatch(/at least 15/);
    expect(passwordError(checkPassword('x'.repeat(300)))).toMatch(/at most 256/);
    expect(passwordError(checkPassword('x'.repeat(15)))).toBeNull();
  });
});
