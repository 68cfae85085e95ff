// Tests for telling this tab's own live events from other people's.
import { describe, expect, it } from 'vitest';
import type { LiveEvent } from '@/lib/live';
import { eventSubject, mutationsMatch, OwnChanges } from './ownChanges';

const ev = (type: string, data: Record<string, unknown>): LiveEvent => ({ seq: 1, type, project_id: 'p', data });
const updated = (id: string, v: string, createdBy = 'u0') => ev('task.updated', { task: { id, updated_at: v, created_by: createdBy } });

describe('OwnChanges', () => {
  it('a pending request makes the echo ours', () => {
    const own = new OwnChanges();
    own.begin('t1');
    expect(own.isOwn(updated('t1', 'v2'))).toBe(true);
    expect(own.isOwn(updated('t2', 'v2'))).toBe(false);
  });
  it('after the answer, only the version it got back is ours', () => {
    const own = new OwnChanges();
    own.begin('t1');
    own.end('t1', { id: 't1', updated_at: 'v2' });
    expect(own.isOwn(updated('t1', 'v2'))).toBe(true);
    expect(own.isOwn(updated('t1', 'v3'))).toBe(false);
  });
  it('counts overlapping requests', () => {
    const own = new OwnChanges();
    own.begin('t1');
    own.begin('t1');
    own.end('t1');
    expect(own.isPending('t1')).toBe(true);
    own.end('t1');
    expect(own.isPending('t1')).toBe(false);
  });
  it('a failed request leaves nothing behind', () => {
    const own = new OwnChanges();
    own.begin('t1');
    own.end('t1', null);
    expect(own.isOwn(updated('t1', 'v2'))).toBe(false);
  });
  it('forgets versions after the ttl', () => {
    let now = 0;
    const own = new OwnChanges(1000, () => now);
    own.remember({ id: 't1', updated_at: 'v2' });
    now = 999;
    expect(own.isOwn(updated('t1', 'v2'))).toBe(true);
    now = 1000;
    expect(own.isOwn(updated('t1', 'v2'))).toBe(false);
  });
  it('a pending create matches a task.created by the same user (events carry no title)', () => {
    const own = new OwnChanges();
    const token = own.beginCreate('me');
    expect(own.isOwn(ev('task.created', { task: { id: 'n', created_by: 'me', updated_at: 'v1' } }))).toBe(true);
    expect(own.isOwn(ev('task.created', { task: { id: 'm', created_by: 'someone', updated_at: 'v1' } }))).toBe(false);
    own.endCreate(token, { id: 'n', updated_at: 'v1' });
    expect(own.isOwn(ev('task.created', { task: { id: 'n', created_by: 'me', updated_at: 'v1' } }))).toBe(true);
    expect(own.isOwn(ev('task.created', { task: { id: 'x', created_by: 'me', updated_at: 'v1' } }))).toBe(false);
  });
  it('a comment is not ours just because a move of its task is pending', () => {
    const own = new OwnChanges();
    own.begin('t1');
    expect(own.isOwn(ev('comment.created', { comment: { id: 'c1', task_id: 't1', updated_at: 'v' } }))).toBe(false);
  });
  it('events without a subject are never ours', () => {
    expect(new OwnChanges().isOwn(ev('project.updated', {}))).toBe(false);
  });
});

describe('eventSubject / mutationsMatch', () => {
  it('reads tasks, comments and bare task ids', () => {
    expect(eventSubject(updated('t', 'v', 'u1'))).toEqual({ kind: 'task', id: 't', version: 'v', createdBy: 'u1' });
    expect(eventSubject(ev('comment.created', { comment: { id: 'c', task_id: 't' } }))).toEqual({
      kind: 'comment',
      id: 'c',
      version: null,
      createdBy: null,
    });
    expect(eventSubject(ev('task.deleted', { task_id: 't', status: 'done' }))).toEqual({ kind: 'task', id: 't', version: null, createdBy: null });
    expect(eventSubject(ev('member.changed', { user_id: 'u' }))).toBeNull();
  });
  it('matches pending variables naming the subject, or a finished mutation with that version', () => {
    const subject = { kind: 'task' as const, id: 't1', version: 'v2', createdBy: null };
    expect(mutationsMatch([{ status: 'pending', variables: { taskId: 't1', title: 'x' } }], subject)).toBe(true);
    expect(mutationsMatch([{ status: 'pending', variables: { title: 'x' } }], subject)).toBe(false);
    expect(mutationsMatch([{ status: 'success', data: { id: 't1', updated_at: 'v2' } }], subject)).toBe(true);
    expect(mutationsMatch([{ status: 'success', data: { id: 't1', updated_at: 'v1' } }], subject)).toBe(false);
    expect(mutationsMatch([{ status: 'error', data: undefined }], subject)).toBe(false);
  });
});
