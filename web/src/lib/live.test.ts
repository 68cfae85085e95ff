// Tests for the live-updates client: back-off, which queries an event makes stale, duplicate
// dropping, and a connection's subscribe / replay-from-since / resync / reconnect behaviour
// against a fake WebSocket.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { accept, backoff, eventTaskId, LiveConnection, removesUser, staleKeys, type LiveEvent, type LiveMessage } from './live';
import { keys } from './queryKeys';

const P = 'p1';
const ev = (type: string, seq: number, data: Record<string, unknown>): LiveEvent => ({ seq, type, project_id: P, data });

describe('backoff', () => {
  it('doubles from half a second up to fifteen, with ±20 % jitter', () => {
    expect(backoff(0, () => 0.5)).toBe(500);
    expect(backoff(1, () => 0.5)).toBe(1000);
    expect(backoff(20, () => 0.5)).toBe(15_000);
    expect(backoff(0, () => 0)).toBe(400);
    expect(backoff(0, () => 1)).toBe(600);
  });
});

describe('staleKeys', () => {
  it('names the task lists and the task of task events', () => {
    expect(staleKeys(ev('task.updated', 1, { task: { id: 't1' } }))).toEqual([keys.tasks(P), keys.task('t1')]);
    expect(staleKeys(ev('task.deleted', 2, { task_id: 't2' }))).toEqual([keys.tasks(P), keys.task('t2')]);
    expect(staleKeys(ev('task.created', 3, {}))).toEqual([keys.tasks(P)]);
  });
  it('needs only the ids and changed field names events carry (never their text)', () => {
    expect(staleKeys(ev('task.updated', 1, { task_id: 't1', task: { id: 't1' }, fields: ['title', 'labels'] }))).toEqual([
      keys.tasks(P),
      keys.task('t1'),
    ]);
    expect(staleKeys(ev('comment.updated', 1, { comment_id: 'c1', task_id: 't1', fields: ['body'] }))).toEqual([keys.comments('t1')]);
    expect(staleKeys(ev('comment.deleted', 1, { comment_id: 'c1', task_id: 't1' }))).toEqual([keys.comments('t1')]);
    expect(staleKeys(ev('project.updated', 1, { project_id: P, fields: ['name'] }))).toEqual([keys.project(P), keys.projects]);
  });
  it('names comments, members and the project', () => {
    expect(staleKeys(ev('comment.created', 1, { comment: { task_id: 't1' } }))).toEqual([keys.comments('t1')]);
    expect(staleKeys(ev('member.changed', 1, { user_id: 'u' }))).toEqual([keys.members(P), keys.project(P), keys.tasks(P)]);
    expect(staleKeys(ev('project.updated', 1, {}))).toEqual([keys.project(P), keys.projects]);
    expect(staleKeys(ev('something.else', 1, {}))).toEqual([]);
  });
});

describe('small helpers', () => {
  it('finds the task of an event', () => {
    expect(eventTaskId(ev('task.updated', 1, { task: { id: 't1' } }))).toBe('t1');
    expect(eventTaskId(ev('comment.created', 1, { comment: { task_id: 't9' } }))).toBe('t9');
    expect(eventTaskId(ev('project.updated', 1, {}))).toBeNull();
  });
  it('drops what was already seen', () => {
    expect(accept(null, 1)).toBe(true);
    expect(accept(4, 5)).toBe(true);
    expect(accept(5, 5)).toBe(false);
    expect(accept(5, 3)).toBe(false);
  });
  it('recognises the event that removed the caller', () => {
    const removed = ev('member.changed', 1, { user_id: 'me', change: 'removed' });
    expect(removesUser(removed, 'me')).toBe(true);
    expect(removesUser(removed, 'someone')).toBe(false);
    expect(removesUser(ev('member.changed', 1, { user_id: 'me', change: 'role' }), 'me')).toBe(false);
  });
});

class FakeSocket {
  static OPEN = 1;
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number }) => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeSocket.all.push(this);
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  deliver(message: unknown) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

describe('LiveConnection', () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.useFakeTimers();
    vi.stubGlobal('WebSocket', FakeSocket);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  function connect(token = 'tok') {
    const renew = vi.fn(async () => 'fresh');
    const conn = new LiveConnection(() => token, renew, 'ws://test/api/ws');
    const heard: LiveMessage[] = [];
    const stop = conn.subscribe(P, (m) => heard.push(m));
    return { conn, heard, stop, renew };
  }

  it('opens with the token as subprotocol and subscribes', () => {
    connect();
    const ws = FakeSocket.all[0]!;
    expect(ws.protocols).toEqual(['trellis', 'bearer.tok']);
    ws.open();
    expect(ws.sent).toEqual([{ subscribe: [P] }]);
  });

  it('delivers events in order once, and replays from the last seq after a reconnect', () => {
    const { heard } = connect();
    const ws = FakeSocket.all[0]!;
    ws.open();
    ws.deliver({ type: 'subscribed', project_id: P, seq: 3 });
    ws.deliver({ seq: 4, type: 'task.created', project_id: P, data: {} });
    ws.deliver({ seq: 4, type: 'task.created', project_id: P, data: {} });
    ws.deliver({ seq: 5, type: 'task.updated', project_id: P, data: {} });
    expect(heard.map((m) => (m.kind === 'event' ? m.event.seq : m.kind))).toEqual([4, 5]);

    ws.drop();
    vi.advanceTimersByTime(20_000);
    const again = FakeSocket.all[1]!;
    again.open();
    expect(again.sent).toEqual([{ subscribe: [P], since: { [P]: 5 } }]);
  });

  it('passes on resync and unsubscribed', () => {
    const { heard } = connect();
    const ws = FakeSocket.all[0]!;
    ws.open();
    ws.deliver({ type: 'resync', project_id: P, seq: 10 });
    ws.deliver({ seq: 9, type: 'task.created', project_id: P, data: {} });
    ws.deliver({ type: 'unsubscribed', project_id: P, reason: 'deleted' });
    expect(heard).toEqual([{ kind: 'resync' }, { kind: 'unsubscribed', reason: 'deleted' }]);
  });

  it('renews the token after a 4401 close before reconnecting', async () => {
    const { renew } = connect();
    FakeSocket.all[0]!.open();
    FakeSocket.all[0]!.drop(4401);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(renew).toHaveBeenCalledOnce();
    expect(FakeSocket.all.length).toBe(2);
  });

  it('drops the socket when the browser goes offline and reconnects at once when it is back', () => {
    const win = new EventTarget();
    vi.stubGlobal('window', win);
    const { conn } = connect();
    const statuses: string[] = [];
    conn.onStatus((st) => statuses.push(st));
    const ws = FakeSocket.all[0]!;
    ws.open();
    ws.deliver({ seq: 7, type: 'task.created', project_id: P, data: {} });
    win.dispatchEvent(new Event('offline'));
    expect(ws.readyState).toBe(3);
    expect(statuses.at(-1)).toBe('offline');
    win.dispatchEvent(new Event('online'));
    expect(FakeSocket.all.length).toBe(2);
    FakeSocket.all[1]!.open();
    expect(FakeSocket.all[1]!.sent).toEqual([{ subscribe: [P], since: { [P]: 7 } }]);
    expect(statuses.at(-1)).toBe('live');
  });

  it('unsubscribes when the last listener leaves, and closes for good on close()', () => {
    const { conn, stop } = connect();
    const ws = FakeSocket.all[0]!;
    ws.open();
    stop();
    expect(ws.sent.at(-1)).toEqual({ unsubscribe: [P] });
    conn.close();
    ws.drop();
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all.length).toBe(1);
  });
});
