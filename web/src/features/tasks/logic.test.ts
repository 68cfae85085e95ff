// Unit tests of the task panel's pure logic: PATCH diff, validation, labels, sizes, times, states.
import { describe, expect, it } from 'vitest';
import {
  addLabel,
  attachmentState,
  canEditTasks,
  diffTask,
  draftOf,
  formatDueDate,
  formatFileSize,
  normaliseLabels,
  relativeTime,
  uploadErrorMessage,
  validateDraft,
} from './logic';
import type { Task } from './types';

const task: Task = {
  id: 't1',
  project_id: 'p1',
  title: 'Write the plan',
  description: 'Some text',
  status: 'todo',
  priority: 'medium',
  assignee_id: null,
  due_date: '2026-12-01',
  labels: ['backend', 'ops'],
  position: 'a',
  created_by: 'u1',
  created_at: '2026-11-01T10:00:00Z',
  updated_at: '2026-11-02T10:00:00Z',
};

describe('diffTask', () => {
  it('sends nothing when nothing changed', () => {
    expect(diffTask(task, draftOf(task))).toEqual({});
    expect(diffTask(task, {})).toEqual({});
  });
  it('sends only the changed fields', () => {
    expect(diffTask(task, { ...draftOf(task), status: 'done', priority: 'urgent' })).toEqual({ status: 'done', priority: 'urgent' });
  });
  it('trims the title and ignores whitespace-only changes', () => {
    expect(diffTask(task, { title: '  Write the plan ' })).toEqual({});
    expect(diffTask(task, { title: ' New title ' })).toEqual({ title: 'New title' });
  });
  it('maps empty assignee and due date to null, and back', () => {
    expect(diffTask(task, { due_date: '' })).toEqual({ due_date: null });
    expect(diffTask(task, { assignee_id: '' })).toEqual({});
    expect(diffTask(task, { assignee_id: 'u2' })).toEqual({ assignee_id: 'u2' });
    expect(diffTask({ ...task, assignee_id: 'u2' }, { assignee_id: '' })).toEqual({ assignee_id: null });
    expect(diffTask({ ...task, due_date: null }, { due_date: '2027-01-02' })).toEqual({ due_date: '2027-01-02' });
  });
  it('treats a null description as empty', () => {
    expect(diffTask({ ...task, description: null }, { description: '' })).toEqual({});
    expect(diffTask(task, { description: '' })).toEqual({ description: '' });
  });
  it('compares normalised labels, order included', () => {
    expect(diffTask(task, { labels: [' backend', 'ops ', 'ops'] })).toEqual({});
    expect(diffTask(task, { labels: ['ops', 'backend'] })).toEqual({ labels: ['ops', 'backend'] });
    expect(diffTask(task, { labels: ['backend'] })).toEqual({ labels: ['backend'] });
  });
});

describe('normaliseLabels / addLabel', () => {
  it('trims, drops empties and duplicates, keeps order', () => {
    expect(normaliseLabels([' a ', '', 'b', 'a', '  ', 'B'])).toEqual(['a', 'b', 'B']);
  });
  it('adds a trimmed label', () => {
    expect(addLabel(['a'], '  new one ')).toEqual({ labels: ['a', 'new one'] });
  });
  it('ignores a label already there', () => {
    expect(addLabel(['a', 'b'], 'b')).toEqual({ labels: ['a', 'b'] });
  });
  it('refuses empty, too long and the 21st label', () => {
    expect(addLabel([], '   ')).toEqual({ error: 'Type a label first.' });
    expect(addLabel([], 'x'.repeat(51))).toEqual({ error: 'A label can be at most 50 characters.' });
    expect(addLabel([], 'é'.repeat(50))).toEqual({ labels: ['é'.repeat(50)] });
    const twenty = Array.from({ length: 20 }, (_, i) => `l${i}`);
    expect(addLabel(twenty, 'one more')).toEqual({ error: 'A task can have at most 20 labels.' });
    expect(addLabel(twenty, 'l3')).toEqual({ labels: twenty });
  });
});

describe('validateDraft', () => {
  it('checks the title length', () => {
    expect(validateDraft({ title: '  ' })).toEqual({ title: 'Enter a title.' });
    expect(validateDraft({ title: 'x'.repeat(200) })).toEqual({});
    expect(validateDraft({ title: 'x'.repeat(201) }).title).toMatch(/at most 200/);
  });
  it('checks the description length', () => {
    expect(validateDraft({ description: 'x'.repeat(10_000) })).toEqual({});
    expect(validateDraft({ description: 'x'.repeat(10_001) }).description).toMatch(/at most 10,000 characters \(now 10,001\)/);
  });
  it('checks dates and labels', () => {
    expect(validateDraft({ due_date: '' })).toEqual({});
    expect(validateDraft({ due_date: '2026-1-1' }).due_date).toBeDefined();
    expect(validateDraft({ labels: Array.from({ length: 21 }, (_, i) => `l${i}`) }).labels).toMatch(/at most 20/);
  });
});

describe('formatFileSize', () => {
  it('formats bytes, KB, MB and GB (1024-based)', () => {
    expect(formatFileSize(0)).toBe('0 bytes');
    expect(formatFileSize(1)).toBe('1 byte');
    expect(formatFileSize(1023)).toBe('1023 bytes');
    expect(formatFileSize(1024)).toBe('1 KB');
    expect(formatFileSize(1536)).toBe('1.5 KB');
    expect(formatFileSize(10 * 1024)).toBe('10 KB');
    expect(formatFileSize(12_345_678)).toBe('12 MB');
    expect(formatFileSize(26_214_400)).toBe('25 MB');
    expect(formatFileSize(1024 * 1024 - 1)).toBe('1 MB');
    expect(formatFileSize(3 * 1024 ** 3)).toBe('3 GB');
  });
  it('is defensive about bad input', () => {
    expect(formatFileSize(-1)).toBe('—');
    expect(formatFileSize(Number.NaN)).toBe('—');
  });
});

describe('relativeTime', () => {
  const now = Date.parse('2026-11-25T12:00:00Z');
  it('says just now for the last minute', () => {
    expect(relativeTime('2026-11-25T11:59:30Z', now)).toBe('just now');
    expect(relativeTime('2026-11-25T12:00:10Z', now)).toBe('just now');
  });
  it('uses the largest fitting unit', () => {
    expect(relativeTime('2026-11-25T11:55:00Z', now)).toBe('5 minutes ago');
    expect(relativeTime('2026-11-25T09:00:00Z', now)).toBe('3 hours ago');
    expect(relativeTime('2026-11-24T10:00:00Z', now)).toBe('yesterday');
    expect(relativeTime('2026-11-20T12:00:00Z', now)).toBe('5 days ago');
    expect(relativeTime('2026-11-04T12:00:00Z', now)).toBe('3 weeks ago');
    expect(relativeTime('2026-08-25T12:00:00Z', now)).toBe('3 months ago');
    expect(relativeTime('2024-11-25T12:00:00Z', now)).toBe('2 years ago');
    expect(relativeTime('2026-11-28T12:00:00Z', now)).toBe('in 3 days');
  });
  it('returns nothing for a bad time', () => {
    expect(relativeTime('soon', now)).toBe('');
  });
});

describe('formatDueDate', () => {
  it('reads a calendar date without time-zone drift', () => {
    expect(formatDueDate('2026-12-01')).toMatch(/^Tue,? 1 Dec 2026$/);
    expect(formatDueDate('nonsense')).toBe('nonsense');
  });
});

describe('attachmentState', () => {
  it('maps the scan states', () => {
    expect(attachmentState({ status: 'available', scan: 'none' })).toEqual({ label: 'Available', tone: 'ok', downloadable: true });
    expect(attachmentState({ status: 'available', scan: 'clean' }).downloadable).toBe(true);
    expect(attachmentState({ status: 'quarantined', scan: 'pending' })).toEqual({ label: 'Pending scan', tone: 'pending', downloadable: false });
    expect(attachmentState({ status: 'rejected', scan: 'infected' }).downloadable).toBe(false);
  });
});

describe('uploadErrorMessage', () => {
  it('explains the size limit in human units', () => {
    expect(uploadErrorMessage(413, 'big.zip', 'the file is larger than 26214400 bytes')).toBe('“big.zip” is too large: files can be at most 25 MB.');
    expect(uploadErrorMessage(413, 'big.zip')).toBe('“big.zip” is too large for the server.');
  });
  it('explains types and bad names', () => {
    expect(uploadErrorMessage(415, 'a.bin', 'files named .bin are not accepted')).toBe('“a.bin” is not an accepted type of file (files named .bin are not accepted).');
    expect(uploadErrorMessage(422, 'x', 'bad file name')).toBe('“x” cannot be uploaded: bad file name');
    expect(uploadErrorMessage(0, 'x')).toMatch(/did not reach the server/);
  });
  it('blames the size when a big upload is cut off', () => {
    expect(uploadErrorMessage(0, 'big.iso', undefined, 27_000_000)).toBe(
      '“big.iso” (26 MB) could not be uploaded: it is probably larger than the server accepts (25 MB unless configured otherwise).',
    );
    expect(uploadErrorMessage(502, 'big.iso', undefined, 27_000_000)).toMatch(/probably larger/);
    expect(uploadErrorMessage(0, 'small.txt', undefined, 1000)).toMatch(/did not reach the server/);
  });
});

describe('canEditTasks', () => {
  it('lets owners, editors and admins edit; viewers and guests read', () => {
    expect(canEditTasks('owner', 'user')).toBe(true);
    expect(canEditTasks('editor', 'user')).toBe(true);
    expect(canEditTasks('viewer', 'user')).toBe(false);
    expect(canEditTasks('editor', 'guest')).toBe(false);
    expect(canEditTasks(undefined, 'admin')).toBe(true);
    expect(canEditTasks(undefined, 'user')).toBe(false);
  });
});
