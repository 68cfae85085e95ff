// URL builders and small rules for the admin pages: user search, audit-log filters, the
// confirmation a role or status change needs.
import type { Role, UserStatus } from '../types';

export const ROLES: Role[] = ['admin', 'user', 'guest'];
export const STATUSES: UserStatus[] = ['active', 'inactive'];

export type UserFilters = { q: string; role: string; status: string };
export type AuditFilters = { action: string; actor_id: string; from: string; to: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** The server needs a word of 2+ letters or digits in `q`; shorter searches are not sent. */
export function usableQuery(q: string): string {
  const trimmed = q.trim().replace(/\s+/g, ' ');
  return /[\p{L}\p{N}]{2,}/u.test(trimmed) ? trimmed : '';
}

export function usersUrl(filters: UserFilters, cursor: string | null, limit = 25): string {
  const params = new URLSearchParams();
  const q = usableQuery(filters.q);
  if (q) params.set('q', q);
  if ((ROLES as string[]).includes(filters.role)) params.set('role', filters.role);
  if (['active', 'inactive', 'deleted'].includes(filters.status)) params.set('status', filters.status);
  params.set('limit', String(limit));
  if (cursor) params.set('cursor', cursor);
  return `/api/users?${params.toString()}`;
}

/** The audit-log URL; filters that would be refused (a malformed actor id) are left out. */
export function auditUrl(filters: AuditFilters, cursor: string | null, limit = 50): string {
  const params = new URLSearchParams();
  if (filters.action.trim()) params.set('action', filters.action.trim());
  if (isUuid(filters.actor_id.trim())) params.set('actor_id', filters.actor_id.trim().toLowerCase());
  if (filters.from) params.set('from', filters.from);
  if (filters.to) params.set('to', filters.to);
  params.set('limit', String(limit));
  if (cursor) params.set('cursor', cursor);
  return `/api/admin/audit-log?${params.toString()}`;
}

/** The filters as they appear in the page's query string (empty ones dropped). */
export function filtersFromSearch<K extends string>(search: URLSearchParams, names: readonly K[]): Record<K, string> {
  const out = {} as Record<K, string>;
  for (const name of names) out[name] = search.get(name) ?? '';
  return out;
}

export type Change = { role?: Role; status?: UserStatus };

/**
 * The question to ask before a change, or null when it needs none: demoting an admin and
 * deactivating an account both end the person's sessions (and may lock oneself out).
 */
export function confirmationFor(
  user: { name: string; role: Role; status: UserStatus },
  change: Change,
  isSelf: boolean,
): string | null {
  const parts: string[] = [];
  if (change.role && user.role === 'admin' && change.role !== 'admin') {
    parts.push(`${user.name} will no longer be an administrator (new role: ${change.role}).`);
  }
  if (change.status === 'inactive' && user.status !== 'inactive') {
    parts.push(`${user.name} will be deactivated and cannot sign in until reactivated.`);
  }
  if (parts.length === 0) return null;
  parts.push(isSelf ? 'This is your own account: you will be signed out at once.' : 'Their sessions end at once.');
  return parts.join(' ');
}

/** First characters of a hash or id, for tables (the whole value goes in a title). */
export function shorten(value: string, length = 12): string {
  return value.length > length ? `${value.slice(0, length)}…` : value;
}

/** Whether a change takes an active admin out of the active admins. */
export function removesAdmin(user: { role: Role; status: UserStatus }, change: Change): boolean {
  if (user.role !== 'admin' || user.status !== 'active') return false;
  return (change.role !== undefined && change.role !== 'admin') || (change.status !== undefined && change.status !== 'active');
}
