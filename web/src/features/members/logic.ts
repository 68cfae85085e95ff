// Member-list logic: ordering, the "a project keeps an owner" rule, what the caller may do to
// each member, names, and when a person search is worth sending.
import type { Member, PublicUser } from './types';

export const ROLES = ['owner', 'editor', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_LABELS: Record<Role, string> = { owner: 'Owner', editor: 'Editor', viewer: 'Viewer' };

export const ROLE_HINTS: Record<Role, string> = {
  owner: 'Everything, including members and deleting the project',
  editor: 'Edit the project, its tasks and comments',
  viewer: 'Read and comment only',
};

/** The label of a role (unknown roles are shown as they are). */
export function roleLabel(role: string): string {
  return (ROLE_LABELS as Record<string, string>)[role] ?? role;
}

const RANK: Record<string, number> = { owner: 0, editor: 1, viewer: 2 };

/** Owners first, then editors, then viewers; by name within a role (then by id, stable). */
export function sortMembers(members: Member[], nameOf: (userId: string) => string): Member[] {
  const collator = new Intl.Collator(undefined, { sensitivity: 'base' });
  return [...members].sort(
    (a, b) =>
      (RANK[a.role] ?? 9) - (RANK[b.role] ?? 9) ||
      collator.compare(nameOf(a.user_id), nameOf(b.user_id)) ||
      a.user_id.localeCompare(b.user_id),
  );
}

export function ownerCount(members: Member[]): number {
  return members.filter((m) => m.role === 'owner').length;
}

/** Whether `userId` is the only owner (so may neither leave nor stop being an owner). */
export function isSoleOwner(members: Member[], userId: string): boolean {
  return ownerCount(members) === 1 && members.some((m) => m.user_id === userId && m.role === 'owner');
}

export type MemberActions = {
  /** The role can be changed with a select. */
  changeRole: boolean;
  /** "Remove NAME" (someone else). */
  remove: boolean;
  /** "Leave project" (yourself). */
  leave: boolean;
};

/**
 * What the caller may do to `member`. Managers (owners, admins) change and remove others and
 * their own role; everyone may leave. The sole owner's buttons stay, so the server's 409
 * explains why it cannot happen (the UI adds a hint too).
 */
export function memberActions(member: Member, selfId: string, manage: boolean): MemberActions {
  const self = member.user_id === selfId;
  return { changeRole: manage, remove: manage && !self, leave: self };
}

/** The name to show for a member: theirs if known, a stand-in while loading or if unknown. */
export function displayName(user: PublicUser | undefined, state: 'pending' | 'error' | 'success'): string {
  if (user && user.name.trim() !== '') return user.name;
  return state === 'pending' ? 'Loading name…' : 'Unknown person';
}

/**
 * Whether a person search may be sent: `GET /api/users?q=` needs a word of at least two letters
 * or digits (422 otherwise).
 */
export function canSearchPeople(q: string): boolean {
  return q.split(/[^\p{L}\p{N}]+/u).some((word) => [...word].length >= 2);
}

/** Search results that are not members yet. */
export function notMembers(users: PublicUser[], members: Member[]): PublicUser[] {
  const ids = new Set(members.map((m) => m.user_id));
  return users.filter((u) => !ids.has(u.id));
}

/**
 * Whether a live event says the caller was removed from the project (`member.changed` with
 * `{change: "removed", user_id}`): the page stops at once, before refetches turn into 404s.
 */
export function removesUser(event: { type: string; data?: Record<string, unknown> }, userId: string): boolean {
  return event.type === 'member.changed' && event.data?.change === 'removed' && event.data?.user_id === userId;
}
