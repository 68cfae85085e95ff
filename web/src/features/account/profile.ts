// Profile form logic: which fields changed (PATCH sends only those), and checking the input.
import type { User } from '@/features/auth/types';
import type { ProfileChange } from './api';

/** The trimmed fields that differ from the stored user; empty when nothing changed. */
export function profileChanges(user: Pick<User, 'name' | 'email'>, name: string, email: string): ProfileChange {
  const change: ProfileChange = {};
  if (name.trim() !== user.name) change.name = name.trim();
  if (email.trim().toLowerCase() !== user.email.toLowerCase()) change.email = email.trim();
  return change;
}

export type ProfileErrors = { name?: string; email?: string };

/** Client-side checks before asking the server (which has the last word). */
export function validateProfile(name: string, email: string): ProfileErrors {
  const errors: ProfileErrors = {};
  const n = [...name.trim()].length;
  if (n === 0) errors.name = 'Enter your name.';
  else if (n > 100) errors.name = 'Use at most 100 characters.';
  const e = email.trim();
  if (e === '') errors.email = 'Enter your email address.';
  else if (!/^[^\s@]+@[^\s@]+$/.test(e)) errors.email = 'Enter an email address like name@example.com.';
  return errors;
}

/** Whether the session's copy of the user differs from a fresh one in anything shown. */
export function userChanged(a: User, b: User): boolean {
  return (
    a.name !== b.name ||
    a.email !== b.email ||
    a.role !== b.role ||
    a.email_verified !== b.email_verified ||
    a.mfa_enabled !== b.mfa_enabled ||
    a.status !== b.status
  );
}
