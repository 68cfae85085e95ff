// Pure logic of the task details panel: the PATCH diff, field validation, label normalisation,
// file sizes, relative times, attachment states and upload error messages (no React, no DOM).
import type { Attachment, Task, TaskPatch } from './types';

export const TITLE_MAX = 200;
export const DESCRIPTION_MAX = 10_000;
export const COMMENT_MAX = 10_000;
export const LABELS_MAX = 20;
export const LABEL_MAX = 50;

/** The fields of a task the details panel edits, as the form holds them ('' = empty). */
export type TaskDraft = {
  title: string;
  description: string;
  status: Task['status'];
  priority: Task['priority'];
  /** '' = unassigned. */
  assignee_id: string;
  /** `YYYY-MM-DD`, '' = no due date. */
  due_date: string;
  labels: string[];
};

export type DraftField = keyof TaskDraft;

/** A task's editable fields as form values. */
export function draftOf(task: Task): TaskDraft {
  return {
    title: task.title,
    description: task.description ?? '',
    status: task.status,
    priority: task.priority,
    assignee_id: task.assignee_id ?? '',
    due_date: task.due_date ?? '',
    labels: [...task.labels],
  };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * The PATCH body for the fields of `changes` whose value differs from `task`: only changed
 * fields, normalised as the API wants them (title trimmed, '' → null for assignee and due date,
 * labels normalised). An empty object means there is nothing to send.
 */
export function diffTask(task: Task, changes: Partial<TaskDraft>): TaskPatch {
  const patch: TaskPatch = {};
  if (changes.title !== undefined) {
    const title = changes.title.trim();
    if (title !== task.title) patch.title = title;
  }
  if (changes.description !== undefined && changes.description !== (task.description ?? '')) {
    patch.description = changes.description;
  }
  if (changes.status !== undefined && changes.status !== task.status) patch.status = changes.status;
  if (changes.priority !== undefined && changes.priority !== task.priority) patch.priority = changes.priority;
  if (changes.assignee_id !== undefined) {
    const assignee = changes.assignee_id === '' ? null : changes.assignee_id;
    if (assignee !== task.assignee_id) patch.assignee_id = assignee;
  }
  if (changes.due_date !== undefined) {
    const due = changes.due_date === '' ? null : changes.due_date;
    if (due !== task.due_date) patch.due_date = due;
  }
  if (changes.labels !== undefined) {
    const labels = normaliseLabels(changes.labels);
    if (!sameList(labels, task.labels)) patch.labels = labels;
  }
  return patch;
}

/** Trims labels, drops empty ones and later duplicates (as the server does: exact match), keeping order. */
export function normaliseLabels(labels: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of labels) {
    const label = raw.trim();
    if (label !== '' && !out.includes(label)) out.push(label);
  }
  return out;
}

/**
 * Adds what the person typed to a task's labels: the new list, or the reason it cannot be added.
 * A label already present leaves the list as it is.
 */
export function addLabel(labels: readonly string[], input: string): { labels: string[] } | { error: string } {
  const label = input.trim();
  if (label === '') return { error: 'Type a label first.' };
  if ([...label].length > LABEL_MAX) return { error: `A label can be at most ${LABEL_MAX} characters.` };
  const current = normaliseLabels(labels);
  if (current.includes(label)) return { labels: current };
  if (current.length >= LABELS_MAX) return { error: `A task can have at most ${LABELS_MAX} labels.` };
  return { labels: [...current, label] };
}

/** Client-side checks before a PATCH: a message per field that cannot be sent as it is. */
export function validateDraft(changes: Partial<TaskDraft>): Partial<Record<DraftField, string>> {
  const errors: Partial<Record<DraftField, string>> = {};
  if (changes.title !== undefined) {
    const title = changes.title.trim();
    if (title === '') errors.title = 'Enter a title.';
    else if ([...title].length > TITLE_MAX) errors.title = `The title can be at most ${TITLE_MAX} characters (now ${[...title].length}).`;
  }
  if (changes.description !== undefined && changes.description.length > DESCRIPTION_MAX) {
    errors.description = `The description can be at most ${DESCRIPTION_MAX.toLocaleString('en')} characters (now ${changes.description.length.toLocaleString('en')}).`;
  }
  if (changes.due_date !== undefined && changes.due_date !== '' && !/^\d{4}-\d{2}-\d{2}$/.test(changes.due_date)) {
    errors.due_date = 'Enter a date, or clear the field.';
  }
  if (changes.labels !== undefined) {
    const labels = normaliseLabels(changes.labels);
    if (labels.length > LABELS_MAX) errors.labels = `A task can have at most ${LABELS_MAX} labels.`;
    else if (labels.some((l) => [...l].length > LABEL_MAX)) errors.labels = `A label can be at most ${LABEL_MAX} characters.`;
  }
  return errors;
}

/** A byte count for people: "0 bytes", "1 byte", "999 bytes", "1.5 KB", "12 MB", "25 MB" (1024-based). */
export function formatFileSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  // One decimal below 10 ("1.5 KB"), none above ("12 MB"); never "10.0".
  const rounded = value < 10 ? Math.round(value * 10) / 10 : Math.round(value);
  if (rounded >= 1024 && unit < units.length - 1) return `1 ${units[unit + 1]}`;
  return `${rounded % 1 === 0 ? rounded.toFixed(0) : rounded.toFixed(1)} ${units[unit]}`;
}

const RELATIVE = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const STEPS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['second', 60],
  ['minute', 60],
  ['hour', 24],
  ['day', 7],
  ['week', 4.345],
  ['month', 12],
  ['year', Infinity],
];

/** "just now", "5 minutes ago", "yesterday", "in 3 days", "2 years ago", from an ISO time. */
export function relativeTime(iso: string, now: number = Date.now()): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  let value = (then - now) / 1000;
  if (Math.abs(value) < 45) return 'just now';
  for (const [unit, size] of STEPS) {
    if (Math.abs(value) < size) return RELATIVE.format(Math.round(value), unit);
    value /= size;
  }
  return RELATIVE.format(Math.round(value), 'year');
}

/** The full date and time of an ISO time, for a tooltip. */
export function absoluteTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString('en', { dateStyle: 'medium', timeStyle: 'short' });
}

/** A `YYYY-MM-DD` due date for reading: "Tue, 1 Dec 2026". */
export function formatDueDate(date: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return date;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
}

export type AttachmentState = { label: string; tone: 'pending' | 'ok' | 'bad'; downloadable: boolean };

/** What an attachment's `status` means to a person, and whether it can be downloaded yet. */
export function attachmentState(a: Pick<Attachment, 'status' | 'scan'>): AttachmentState {
  switch (a.status) {
    case 'available':
      return { label: a.scan === 'clean' ? 'Available (scanned)' : 'Available', tone: 'ok', downloadable: true };
    case 'rejected':
      return { label: 'Rejected by the malware scan', tone: 'bad', downloadable: false };
    case 'quarantined':
    default:
      return { label: 'Pending scan', tone: 'pending', downloadable: false };
  }
}

/** The server's default upload limit (OpenAPI: "larger than the limit (default 25 MiB)"). */
export const DEFAULT_UPLOAD_LIMIT = 25 * 1024 * 1024;

/**
 * A sentence for an upload the server refused, from its status and problem detail. A file over
 * the default limit whose upload broke off (status 0, or 502 from a proxy) was most likely cut off
 * by the server's size check: the server answers 413 before reading the body and closes the
 * connection, which browsers report as a network error.
 */
export function uploadErrorMessage(status: number, fileName: string, detail?: string, size?: number): string {
  if ((status === 0 || status === 502) && size !== undefined && size > DEFAULT_UPLOAD_LIMIT) {
    return `“${fileName}” (${formatFileSize(size)}) could not be uploaded: it is probably larger than the server accepts (${formatFileSize(DEFAULT_UPLOAD_LIMIT)} unless configured otherwise).`;
  }
  switch (status) {
    case 413: {
      const limit = detail ? /(\d{4,})\s*bytes/.exec(detail) : null;
      return limit
        ? `“${fileName}” is too large: files can be at most ${formatFileSize(Number(limit[1]))}.`
        : `“${fileName}” is too large for the server.`;
    }
    case 415:
      return `“${fileName}” is not an accepted type of file${detail ? ` (${detail})` : ''}.`;
    case 422:
      return `“${fileName}” cannot be uploaded${detail ? `: ${detail}` : '.'}`;
    case 403:
      return 'You cannot add files to this task.';
    case 0:
      return 'The upload did not reach the server. Check your connection and try again.';
    default:
      return detail ? `The upload failed: ${detail}` : 'The upload failed. Please try again.';
  }
}

/** Whether a project role may change tasks (`role` from GET /api/projects/{id}; global guests never). */
export function canEditTasks(projectRole: string | undefined, userRole: string | undefined): boolean {
  if (userRole === 'guest') return false;
  if (userRole === 'admin') return true;
  return projectRole === 'owner' || projectRole === 'editor';
}
