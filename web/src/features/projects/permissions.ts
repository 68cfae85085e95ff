// Who may do what in a project (docs/API.md "Projects and tasks"): the caller's project role plus
// the account role (admins may do everything). The server decides; these only shape the UI.
import type { ProjectRole } from './types';

type Who = { projectRole: ProjectRole | null | undefined; accountRole: string | null | undefined };

const isAdmin = (who: Who) => who.accountRole === 'admin';

/** Rename and re-describe the project: owners, editors, admins. */
export function canEditProject(who: Who): boolean {
  return isAdmin(who) || who.projectRole === 'owner' || who.projectRole === 'editor';
}

/** Add members, change others' roles, remove others: owners and admins. */
export function canManageMembers(who: Who): boolean {
  return isAdmin(who) || who.projectRole === 'owner';
}

/** Delete the project: owners and admins. */
export function canDeleteProject(who: Who): boolean {
  return isAdmin(who) || who.projectRole === 'owner';
}

/** Create projects: everyone but read-only guests. */
export function canCreateProjects(accountRole: string | null | undefined): boolean {
  return accountRole !== 'guest';
}

/** The PATCH body for a details form: only what changed (trimmed), or null when nothing did. */
export function projectChanges(
  current: { name: string; description: string | null },
  draft: { name: string; description: string },
): { name?: string; description?: string } | null {
  const changes: { name?: string; description?: string } = {};
  const name = draft.name.trim();
  const description = draft.description.trim();
  if (name !== current.name) changes.name = name;
  if (description !== (current.description ?? '')) changes.description = description;
  return Object.keys(changes).length > 0 ? changes : null;
}

/** Whether the text typed in the delete dialog confirms deleting the project called `name`. */
export function confirmsName(typed: string, name: string): boolean {
  return typed.trim() === name.trim() && name.trim() !== '';
}
