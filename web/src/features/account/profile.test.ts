// Tests for the profile form logic.
import { describe, expect, it } from 'vitest';
import { profileChanges, userChanged, validateProfile } from './profile';

const user = { id: 'u', email: 'ada@example.com', name: 'Ada', role: 'user', email_verified: true, mfa_enabled: false };

describe('profileChanges', () => {
  it('is empty when nothing changed (ignoring spaces and email case)', () => {
    expect(profileChanges(user, ' Ada ', 'ADA@example.com ')).toEqual({});
  });
  it('sends only what changed, trimmed', () => {
    expect(profileChanges(user, 'Ada L. ', 'ada@example.com')).toEqual({ name: 'Ada L.' });
    expect(profileChanges(user, 'Ada', ' new@example.com')).toEqual({ email: 'new@example.com' });
  });
});

describe('validateProfile', () => {
  it('accepts ordinary values', () => {
    expect(validateProfile('Ada', 'ada@example.com')).toEqual({});
  });
  it('asks for a name of 1 to 100 characters', () => {
    expect(validateProfile('  ', 'a@b').name).toMatch(/Enter your name/);
    expect(validateProfile('x'.repeat(101), 'a@b').name).toMatch(/100/);
    expect(validateProfile('🌱'.repeat(100), 'a@b').name).toBeUndefined();
  });
  it('asks for something that looks like an email', () => {
    expect(validateProfile('Ada', '').email).toMatch(/Enter your email/);
    expect(validateProfile('Ada', 'ada.example.com').email).toMatch(/like name@example.com/);
  });
});

describe('userChanged', () => {
  it('notices the fields the app shows', () => {
    expect(userChanged(user, { ...user })).toBe(false);
    expect(userChanged(user, { ...user, mfa_enabled: true })).toBe(true);
    expect(userChanged(user, { ...user, name: 'B' })).toBe(true);
  });
});
