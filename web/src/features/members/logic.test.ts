// Tests for the member-list rules: ordering, sole owner, per-member actions, names, search gate.
import { describe, expect, it } from 'vitest';
import { canSearchPeople, displayName, isSoleOwner, memberActions, notMembers, ownerCount, removesUser, roleLabel, sortMembers } from './logic';
import type { Member } from './types';

const m = (user_id: string, role: string): Member => ({ user_id, role, created_at: '2025-01-01T00:00:00Z' });
const names: Record<string, string> = { a: 'zoë', b: 'Ann', c: 'Bob', d: 'carl' };

describe('sortMembers', () => {
  it('orders by role, then by name ignoring case', () => {
    const sorted = sortMembers([m('c', 'viewer'), m('a', 'owner'), m('d', 'editor'), m('b', 'viewer')], (id) => names[id] ?? id);
    expect(sorted.map((x) => x.user_id)).toEqual(['a', 'd', 'b', 'c']);
  });

  it('does not change its input', () => {
    const input = [m('c', 'viewer'), m('a', 'owner')];
    sortMembers(input, (id) => id);
    expect(input.map((x) => x.user_id)).toEqual(['c', 'a']);
  });
});

describe('owners', () => {
  it('counts owners and spots the sole one', () => {
    const members = [m('a', 'owner'), m('b', 'editor')];
    expect(ownerCount(members)).toBe(1);
    expect(isSoleOwner(members, 'a')).toBe(true);
    expect(isSoleOwner(members, 'b')).toBe(false);
    expect(isSoleOwner([...members, m('c', 'owner')], 'a')).toBe(false);
  });
});

describe('memberActions', () => {
  it('lets managers change everyone and remove others, and everyone leave', () => {
    expect(memberActions(m('a', 'owner'), 'a', true)).toEqual({ changeRole: true, remove: false, leave: true });
    expect(memberActions(m('b', 'editor'), 'a', true)).toEqual({ changeRole: true, remove: true, leave: false });
    expect(memberActions(m('b', 'editor'), 'b', false)).toEqual({ changeRole: false, remove: false, leave: true });
    expect(memberActions(m('a', 'owner'), 'b', false)).toEqual({ changeRole: false, remove: false, leave: false });
  });
});

describe('names and labels', () => {
  it('falls back while loading or when unknown', () => {
    expect(displayName({ id: 'a', name: 'Ann' }, 'success')).toBe('Ann');
    expect(displayName(undefined, 'pending')).toBe('Loading name…');
    expect(displayName(undefined, 'error')).toBe('Unknown person');
    expect(displayName({ id: 'a', name: ' ' }, 'success')).toBe('Unknown person');
  });

  it('labels known roles and passes others through', () => {
    expect(roleLabel('owner')).toBe('Owner');
    expect(roleLabel('auditor')).toBe('auditor');
  });
});

describe('canSearchPeople', () => {
  it('needs a word of two letters or digits', () => {
    expect(canSearchPeople('')).toBe(false);
    expect(canSearchPeople('a')).toBe(false);
    expect(canSearchPeople('a b @')).toBe(false);
    expect(canSearchPeople('@@')).toBe(false);
    expect(canSearchPeople('ed')).toBe(true);
    expect(canSearchPeople('e ed')).toBe(true);
    expect(canSearchPeople('éa')).toBe(true);
    expect(canSearchPeople('ann@example.com')).toBe(true);
  });
});

describe('notMembers', () => {
  it('drops people who are already members', () => {
    expect(notMembers([{ id: 'a', name: 'A' }, { id: 'x', name: 'X' }], [m('a', 'owner')])).toEqual([{ id: 'x', name: 'X' }]);
  });
});

describe('removesUser', () => {
  it('spots the caller being removed, nothing else', () => {
    const ev = (data: Record<string, unknown>, type = 'member.changed') => ({ type, data });
    expect(removesUser(ev({ change: 'removed', user_id: 'me' }), 'me')).toBe(true);
    expect(removesUser(ev({ change: 'removed', user_id: 'other' }), 'me')).toBe(false);
    expect(removesUser(ev({ change: 'added', user_id: 'me' }), 'me')).toBe(false);
    expect(removesUser(ev({ change: 'removed', user_id: 'me' }, 'task.updated'), 'me')).toBe(false);
    expect(removesUser({ type: 'member.changed' }, 'me')).toBe(false);
  });
});
