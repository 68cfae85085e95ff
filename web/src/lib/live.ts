// The live-updates client: one WebSocket to `/api/ws` per signed-in tab, following the projects
// on screen. It remembers the last `seq` seen per project, so a reconnect asks the server to
// replay what was missed (`since`), drops duplicates, and passes on `resync` when the server
// cannot replay (the page then refetches). Reconnects back off from 0.5 s to 15 s with jitter.
import { keys } from './queryKeys';

/** An event as the server sends it (docs/API.md "Live updates"). */
export type LiveEvent = {
  seq: number;
  type: string;
  project_id: string;
  data: Record<string, unknown>;
};

/** What a project's listeners hear. */
export type LiveMessage =
  | { kind: 'event'; event: LiveEvent }
  /** Events were missed and cannot be replayed: refetch everything of the project. */
  | { kind: 'resync' }
  /** The caller lost access (`removed`) or the project is gone (`deleted`). */
  | { kind: 'unsubscribed'; reason: string };

export type LiveListener = (message: LiveMessage) => void;
/** `idle`: nothing followed, so no connection. */
export type LiveStatus = 'idle' | 'connecting' | 'live' | 'offline';

type Subscription = { seq: number | null; listeners: Set<LiveListener> };

/** Close codes after which the token must be renewed before reconnecting. */
const UNAUTHORIZED = 4401;

/** Delay before reconnect attempt `attempt` (0-based): doubling from 500 ms to 15 s, ±20 %. */
export function backoff(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(15_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** The query keys an event makes stale. */
export function staleKeys(event: LiveEvent): (readonly unknown[])[] {
  const p = event.project_id;
  const d = event.data ?? {};
  const id = (v: unknown): string | null =>
    typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string' ? (v as { id: string }).id : null;
  switch (event.type) {
    case 'task.created':
    case 'task.updated':
    case 'task.deleted': {
      const task = id(d.task) ?? id(d.task_id);
      return task ? [keys.tasks(p), keys.task(task)] : [keys.tasks(p)];
    }
    case 'comment.created':
    case 'comment.updated':
    case 'comment.deleted': {
      const comment = d.comment as { task_id?: unknown } | undefined;
      const task = id(comment?.task_id) ?? id(d.task_id);
      return task ? [keys.comments(task)] : [];
    }
    case 'attachment.created':
    case 'attachment.deleted': {
      const task = id(d.task_id) ?? id((d.attachment as { task_id?: unknown } | undefined)?.task_id);
      return task ? [keys.attachments(task)] : [];
    }
    case 'project.updated':
      return [keys.project(p), keys.projects];
    case 'member.changed':
      return [keys.members(p), keys.project(p), keys.tasks(p)];
    default:
      return [];
  }
}

/** Whether the event removed `userId` from its project (`member.changed`, change `removed`). */
export function removesUser(event: LiveEvent, userId: string | null): boolean {
  const d = event.data ?? {};
  return event.type === 'member.changed' && d.change === 'removed' && userId !== null && d.user_id === userId;
}

/** The task an event is about, if any (for highlighting its card). */
export function eventTaskId(event: LiveEvent): string | null {
  const d = event.data ?? {};
  const task = d.task as { id?: unknown } | undefined;
  if (task && typeof task.id === 'string') return task.id;
  if (typeof d.task_id === 'string') return d.task_id;
  const comment = d.comment as { task_id?: unknown } | undefined;
  return comment && typeof comment.task_id === 'string' ? comment.task_id : null;
}

/**
 * Decides what to do with an event for a project whose last seen `seq` is `last`: deliver it,
 * or drop it as a duplicate of one already seen.
 */
export function accept(last: number | null, seq: number): boolean {
  return last === null || seq > last;
}

export class LiveConnection {
  private ws: WebSocket | null = null;
  private subs = new Map<string, Subscription>();
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private statusListeners = new Set<(s: LiveStatus) => void>();
  private status: LiveStatus = 'idle';

  constructor(
    private token: () => string | null,
    private renewToken: () => Promise<string | null>,
    private url: string = LiveConnection.defaultUrl(),
  ) {
    // A dead network is noticed at once (not at the next heartbeat), and its return is a reason
    // to reconnect now rather than at the end of the back-off.
    if (typeof window !== 'undefined' && typeof window.addEventListener === 'function') {
      window.addEventListener('offline', this.wentOffline);
      window.addEventListener('online', this.cameOnline);
    }
  }

  private wentOffline = (): void => {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onclose = null;
    ws.close();
    this.setStatus('offline');
  };

  private cameOnline = (): void => {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.ensureOpen();
  };

  static defaultUrl(): string {
    const { protocol, host } = window.location;
    return `${protocol === 'https:' ? 'wss' : 'ws'}://${host}/api/ws`;
  }

  /** Follows a project; returns the function that stops following it. */
  subscribe(projectId: string, listener: LiveListener): () => void {
    let sub = this.subs.get(projectId);
    if (!sub) {
      sub = { seq: null, listeners: new Set() };
      this.subs.set(projectId, sub);
      this.send({ subscribe: [projectId] });
    }
    sub.listeners.add(listener);
    this.ensureOpen();
    return () => {
      const s = this.subs.get(projectId);
      if (!s) return;
      s.listeners.delete(listener);
      if (s.listeners.size === 0) {
        this.subs.delete(projectId);
        this.send({ unsubscribe: [projectId] });
      }
    };
  }

  onStatus(listener: (s: LiveStatus) => void): () => void {
    this.statusListeners.add(listener);
    listener(this.status);
    return () => this.statusListeners.delete(listener);
  }

  /** Hands the server a renewed access token, so the connection outlives the old one. */
  updateToken(token: string): void {
    this.send({ token });
  }

  close(): void {
    this.closed = true;
    if (typeof window !== 'undefined' && typeof window.removeEventListener === 'function') {
      window.removeEventListener('offline', this.wentOffline);
      window.removeEventListener('online', this.cameOnline);
    }
    if (this.timer) clearTimeout(this.timer);
    this.ws?.close(1000, 'bye');
    this.ws = null;
  }

  private setStatus(status: LiveStatus): void {
    if (status === this.status) return;
    this.status = status;
    this.statusListeners.forEach((l) => l(status));
  }

  private send(message: unknown): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  private ensureOpen(): void {
    if (this.closed || this.ws || this.timer || this.subs.size === 0) return;
    const token = this.token();
    if (!token) return;
    this.setStatus('connecting');
    const ws = new WebSocket(this.url, ['trellis', `bearer.${token}`]);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.setStatus('live');
      const since: Record<string, number> = {};
      for (const [id, sub] of this.subs) if (sub.seq !== null) since[id] = sub.seq;
      const subscribe = [...this.subs.keys()];
      if (subscribe.length > 0) ws.send(JSON.stringify(Object.keys(since).length > 0 ? { subscribe, since } : { subscribe }));
    };
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed) return;
      this.setStatus('offline');
      const delay = backoff(this.attempt++);
      this.timer = setTimeout(() => {
        this.timer = null;
        if (e.code === UNAUTHORIZED) void this.renewToken().finally(() => this.ensureOpen());
        else this.ensureOpen();
      }, delay);
    };
  }

  private receive(raw: unknown): void {
    if (typeof raw !== 'string') return;
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(raw);
    } catch {
      return;
    }
    const project = typeof m.project_id === 'string' ? m.project_id : null;
    const sub = project ? this.subs.get(project) : undefined;
    if (!sub) return;
    const emit = (message: LiveMessage) => sub.listeners.forEach((l) => l(message));
    if (typeof m.seq === 'number' && typeof m.type === 'string' && m.type.includes('.')) {
      if (!accept(sub.seq, m.seq)) return;
      sub.seq = m.seq;
      emit({ kind: 'event', event: m as unknown as LiveEvent });
      return;
    }
    switch (m.type) {
      case 'subscribed':
        if (sub.seq === null && typeof m.seq === 'number') sub.seq = m.seq;
        break;
      case 'resync':
        if (typeof m.seq === 'number') sub.seq = m.seq;
        emit({ kind: 'resync' });
        break;
      case 'unsubscribed':
        emit({ kind: 'unsubscribed', reason: typeof m.reason === 'string' ? m.reason : 'removed' });
        break;
    }
  }
}
