// The audit-log filter form: from the page's query string to the form's fields and back, with
// validation (actor id, time range) so no request is sent that the server would refuse.
import { localInputToRfc3339, rfc3339ToLocalInput } from './datetime';
import { isUuid, type AuditFilters } from './urls';

/** Event types the server records (suggestions for the Action field; any value may be typed). */
export const KNOWN_ACTIONS = [
  'attachment.created',
  'attachment.deleted',
  'attachment.quarantined',
  'attachment.rejected',
  'auth.email_changed',
  'auth.email_verification_requested',
  'auth.email_verified',
  'auth.login_failed',
  'auth.login_succeeded',
  'auth.logout',
  'auth.logout_all',
  'auth.mfa_disabled',
  'auth.mfa_enabled',
  'auth.mfa_failed',
  'auth.password_changed',
  'auth.password_reset',
  'auth.refresh_reuse_detected',
  'auth.session_revoked',
  'auth.signing_key_retired',
  'auth.signing_key_rotated',
  'auth.user_erased',
  'comment.created',
  'comment.deleted',
  'comment.updated',
  'member.changed',
  'project.created',
  'project.deleted',
  'project.updated',
  'task.created',
  'task.deleted',
  'task.updated',
  'user.created',
  'user.erased',
  'user.updated',
] as const;

export const AUDIT_FILTERS = ['action', 'actor_id', 'from', 'to'] as const;

export type AuditForm = { action: string; actor: string; from: string; to: string };
export type AuditFormErrors = Partial<Record<keyof AuditForm, string>>;

/** The form's fields for the filters in the URL (times shown in local wall time). */
export function formFromFilters(filters: AuditFilters): AuditForm {
  return {
    action: filters.action,
    actor: filters.actor_id,
    from: filters.from ? rfc3339ToLocalInput(filters.from) : '',
    to: filters.to ? rfc3339ToLocalInput(filters.to) : '',
  };
}

/** Checks the form; the filters to apply, or the errors to show beside the fields. */
export function filtersFromForm(form: AuditForm): { filters: AuditFilters } | { errors: AuditFormErrors } {
  const errors: AuditFormErrors = {};
  const action = form.action.trim();
  if (action && !/^[a-z0-9_.-]+$/i.test(action)) errors.action = 'Use an event type such as project.created.';
  const actor = form.actor.trim().toLowerCase();
  if (actor && !isUuid(actor)) errors.actor = 'Enter a user id (a UUID), or click an actor in the table.';
  const from = form.from ? localInputToRfc3339(form.from) : '';
  if (from === null) errors.from = 'Enter a valid date and time.';
  const to = form.to ? localInputToRfc3339(form.to, true) : '';
  if (to === null) errors.to = 'Enter a valid date and time.';
  if (from && to && Date.parse(from) > Date.parse(to)) errors.to = '“To” must be after “From”.';
  if (Object.keys(errors).length > 0) return { errors };
  return { filters: { action, actor_id: actor, from: from ?? '', to: to ?? '' } };
}

/** A one-line preview of an entry's details: its top-level keys. */
export function detailsPreview(data: unknown): string {
  if (data === null || data === undefined) return 'none';
  if (typeof data !== 'object') return String(data).slice(0, 40);
  const keys = Array.isArray(data) ? [`${data.length} items`] : Object.keys(data);
  if (keys.length === 0) return 'empty';
  const text = keys.slice(0, 3).join(', ');
  return keys.length > 3 ? `${text}, +${keys.length - 3}` : text;
}
