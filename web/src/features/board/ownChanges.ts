// Telling this tab's own changes from other people's in live events. Events carry ids and
// versions, never text (docs/API.md "Live updates"), so a change counts as ours while this tab's
// request for it is pending, when the event's version (`updated_at`) is one a request of this tab
// got back, or (a create whose answer has not come yet) when it is a task this user created while
// this tab was creating one. Everything else gets highlighted.
import { eventTaskId, type LiveEvent } from '@/lib/live';

/** What a TanStack mutation looks like from the outside (its cache entry's state). */
export type MutationLike = { status: string; variables?: unknown; data?: unknown };

type Version = { id: string; updatedAt: string | null; at: number };

/** The changes this tab made recently (kept for `ttlMs`, long enough for a reconnect's replay). */
export class OwnChanges {
  private pending = new Map<string, number>();
  private creates = new Map<number, string>();
  private versions: Version[] = [];
  private nextToken = 1;

  constructor(
    private readonly ttlMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A request about `taskId` starts. */
  begin(taskId: string): void {
    this.pending.set(taskId, (this.pending.get(taskId) ?? 0) + 1);
  }

  /** That request ended; `result` is what the server answered (its version is remembered). */
  end(taskId: string, result?: { id: string; updated_at?: string } | null): void {
    const n = (this.pending.get(taskId) ?? 1) - 1;
    if (n <= 0) this.pending.delete(taskId);
    else this.pending.set(taskId, n);
    if (result) this.remember(result);
  }

  /** A create by `userId` starts (its id is not known yet); returns a token for `endCreate`. */
  beginCreate(userId: string): number {
    const token = this.nextToken++;
    this.creates.set(token, userId);
    return token;
  }

  endCreate(token: number, result?: { id: string; updated_at?: string } | null): void {
    this.creates.delete(token);
    if (result) this.remember(result);
  }

  remember(result: { id: string; updated_at?: string }): void {
    const at = this.now();
    this.versions = this.versions.filter((v) => at - v.at < this.ttlMs);
    this.versions.push({ id: result.id, updatedAt: result.updated_at ?? null, at });
  }

  isPending(taskId: string): boolean {
    return this.pending.has(taskId);
  }

  /** Whether `event` is the echo of a change this tab made (its own requests, or `mutations`). */
  isOwn(event: LiveEvent, mutations: readonly MutationLike[] = []): boolean {
    const subject = eventSubject(event);
    if (!subject) return false;
    const taskId = eventTaskId(event);
    if (taskId && this.pending.has(taskId) && subject.kind === 'task') return true;
    const at = this.now();
    if (this.versions.some((v) => v.id === subject.id && at - v.at < this.ttlMs && (v.updatedAt === null || v.updatedAt === subject.version)))
      return true;
    if (event.type === 'task.created' && subject.createdBy !== null && [...this.creates.values()].includes(subject.createdBy)) return true;
    return mutationsMatch(mutations, subject);
  }
}

type Subject = { kind: 'task' | 'comment' | 'other'; id: string; version: string | null; createdBy: string | null };

/** The thing an event is about: a task or comment with its version, if the event says. */
export function eventSubject(event: LiveEvent): Subject | null {
  const d = event.data ?? {};
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const obj = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : null);
  const task = obj(d.task);
  if (task && str(task.id)) return { kind: 'task', id: str(task.id)!, version: str(task.updated_at), createdBy: str(task.created_by) };
  const comment = obj(d.comment);
  if (comment && str(comment.id)) return { kind: 'comment', id: str(comment.id)!, version: str(comment.updated_at), createdBy: null };
  const taskId = str(d.task_id);
  if (taskId) return { kind: event.type.startsWith('task.') ? 'task' : 'other', id: taskId, version: null, createdBy: null };
  return null;
}

/**
 * Whether one of the tab's other mutations (e.g. the details panel's) made this change: a
 * pending one whose variables name the subject, or a finished one that got this version back.
 */
export function mutationsMatch(mutations: readonly MutationLike[], subject: Subject): boolean {
  return mutations.some((m) => {
    if (m.status === 'pending') {
      try {
        return JSON.stringify(m.variables ?? null).includes(subject.id);
      } catch {
        return false;
      }
    }
    if (m.status !== 'success' || !m.data || typeof m.data !== 'object') return false;
    const data = m.data as { id?: unknown; updated_at?: unknown };
    return data.id === subject.id && (subject.version === null || data.updated_at === subject.version);
  });
}
