// Tests for the project permission rules, the details-form diff and the delete confirmation.
import { describe, expect, it } from 'vitest';
import { canCreateProjects, canDeleteProject, canEditProject, canManageMembers, confirmsName, projectChanges } from './permissions';

describe('permissions', () => {
  const who = (projectRole: string | null, accountRole = 'user') => ({ projectRole, accountRole });

  it('lets owners and editors edit, viewers not', () => {
    expect(canEditProject(who('owner'))).toBe(true);
    expect(canEditProject(who('editor'))).toBe(true);
    expect(canEditProject(who('viewer'))).toBe(false);
    expect(canEditProject(who(null))).toBe(false);
  });

  it('lets only owners manage members and delete', () => {
    for (const check of [canManageMembers, canDeleteProject]) {
      expect(check(who('owner'))).toBe(true);
      expect(check(who('editor'))).toBe(false);
      expect(check(who('viewer'))).toBe(false);
    }
  });

  it('lets admins do everything, whatever their project role', () => {
    for (const check of [canEditProject, canManageMembers, canDeleteProject]) {
      expect(check(who(null, 'admin'))).toBe(true);
      expect(check(who('viewer', 'admin'))).toBe(true);
    }
  });

  it('keeps guests from creating projects', () => {
    expect(canCreateProjects('guest')).toBe(false);
    expect(canCreateProjects('user')).toBe(true);
    expect(canCreateProjects('admin')).toBe(true);
  });
});

describe('projectChanges', () => {
  const current = { name: 'Alpha', description: 'First' };

  it('is null when nothing changed (whitespace aside)', () => {
    expect(projectChanges(current, { name: ' Alpha ', description: 'First\n' })).toBeNull();
    expect(projectChanges({ name: 'A', description: null }, { name: 'A', description: '' })).toBeNull();
  });

  it('sends only the changed fields, trimmed', () => {
    expect(projectChanges(current, { name: ' Beta', description: 'First' })).toEqual({ name: 'Beta' });
    expect(projectChanges(current, { name: 'Alpha', description: '' })).toEqual({ description: '' });
    expect(projectChanges(current, { name: 'B', description: 'C' })).toEqual({ name: 'B', description: 'C' });
  });
});

describe('confirmsName', () => {
  it('needs the exact name (surrounding spaces ignored)', () => {
    expect(confirmsName('Alpha', 'Alpha')).toBe(true);
    expect(confirmsName(' Alpha ', 'Alpha')).toBe(true);
    expect(confirmsName('alpha', 'Alpha')).toBe(false);
    expect(confirmsName('Alph', 'Alpha')).toBe(false);
    expect(confirmsName('', '')).toBe(false);
  });
});
