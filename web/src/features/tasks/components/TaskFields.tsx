// The task's fields in the details panel. Owners and editors edit in place and every change
// saves by itself: Status, Priority and Assignee as soon as they change; Title and Due date when
// the field is left or Enter is pressed (Escape puts the saved value back); Labels when one is
// added (Enter) or removed. Viewers and guests get the same facts as read-only text.
import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { useRequiredSession } from '@/features/auth/session';
import { PRIORITIES, PRIORITY_LABELS, STATUSES, STATUS_LABELS, type Task } from '../types';
import { draftOf, formatDueDate, TITLE_MAX, type DraftField, type TaskDraft } from '../logic';
import type { TaskSaver } from '../useTaskSaver';
import { LabelsField, LabelChips } from './LabelsField';

export const CONTROL =
  'block w-full rounded-md border-0 bg-white px-3 py-2 text-sm text-zinc-900 shadow-sm ring-1 ring-inset ring-zinc-300 placeholder:text-zinc-500 focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600 aria-invalid:ring-red-500 disabled:opacity-60 dark:[color-scheme:dark]';

/** A label, a control and the control's error, wired together by ids. */
function Field({
  label,
  error,
  hint,
  children,
  aside,
}: {
  label: string;
  error?: string;
  hint?: string;
  aside?: ReactNode;
  children: (ids: { id: string; describedBy: string | undefined; invalid: true | undefined }) => ReactNode;
}) {
  const id = useId();
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const describedBy = [error ? errorId : null, hint ? hintId : null].filter(Boolean).join(' ') || undefined;
  return (
    <div className="min-w-0 space-y-1.5">
      <div className="flex items-baseline justify-between gap-2">
        <label htmlFor={id} className="block text-sm font-medium text-zinc-800">
          {label}
        </label>
        {aside}
      </div>
      {children({ id, describedBy, invalid: error ? true : undefined })}
      {error && (
        <p id={errorId} className="text-sm text-red-700">
          {error}
        </p>
      )}
      {hint && (
        <p id={hintId} className="text-xs text-zinc-600">
          {hint}
        </p>
      )}
    </div>
  );
}

type Props = {
  task: Task;
  saver: TaskSaver;
  memberIds: string[];
  names: Record<string, string | undefined>;
};

/** The editable fields (owners and editors). */
export function TaskFields({ task, saver, memberIds, names }: Props) {
  const { user } = useRequiredSession();
  const [drafts, setDrafts] = useState<Partial<TaskDraft>>({});
  const base = draftOf(task);
  const value = <K extends DraftField>(k: K): TaskDraft[K] => (drafts[k] ?? base[k]) as TaskDraft[K];

  // Closing the drawer (Escape, backdrop) does not blur the focused field: send what is pending.
  const draftsRef = useRef(drafts);
  draftsRef.current = drafts;
  const saveRef = useRef(saver.save);
  saveRef.current = saver.save;
  useEffect(
    () => () => {
      const { title, due_date } = draftsRef.current;
      const pending: Partial<TaskDraft> = {};
      if (title !== undefined) pending.title = title;
      if (due_date !== undefined) pending.due_date = due_date;
      if (Object.keys(pending).length > 0) void saveRef.current(pending);
    },
    [],
  );

  function setDraft<K extends DraftField>(k: K, v: TaskDraft[K]) {
    setDrafts((d) => ({ ...d, [k]: v }));
  }

  function forget<K extends DraftField>(k: K) {
    setDrafts((d) => {
      if (!(k in d)) return d;
      const next = { ...d };
      delete next[k];
      return next;
    });
  }

  async function commit<K extends DraftField>(k: K, v: TaskDraft[K]) {
    const result = await saver.save({ [k]: v } as Partial<TaskDraft>);
    // Drop the draft once the server has it, unless it was edited again meanwhile.
    if (result === 'saved' || result === 'unchanged') {
      setDrafts((d) => {
        if (d[k] !== v) return d;
        const next = { ...d };
        delete next[k];
        return next;
      });
    }
  }

  function change<K extends DraftField>(k: K, v: TaskDraft[K]) {
    setDraft(k, v);
    void commit(k, v);
  }

  const assignee = value('assignee_id');
  const options = [...new Set([...memberIds, ...(assignee ? [assignee] : [])])]
    .map((id) => ({ id, name: names[id] ?? 'Loading name…' }))
    .sort((a, b) => a.name.localeCompare(b.name));

  return (
    <div className="space-y-4">
      {saver.conflict && (
        <div role="alert" className="rounded-md border border-amber-200 bg-amber-50 px-3 py-2.5 text-sm text-amber-800">
          <p className="font-medium">Someone else changed this task</p>
          <p className="mt-1">
            Your last change was not saved, because the task changed after you opened it. Load their version, then make
            your change again.
          </p>
          <button
            type="button"
            className="mt-2 inline-flex min-h-9 items-center rounded-md bg-white px-3 text-sm font-medium text-zinc-800 shadow-sm ring-1 ring-inset ring-zinc-300 hover:bg-zinc-50"
            onClick={() => {
              setDrafts({});
              saver.reset();
              saver.reload();
            }}
          >
            Load their version
          </button>
        </div>
      )}

      <Field label="Title" error={saver.fieldErrors.title}>
        {({ id, describedBy, invalid }) => (
          <input
            id={id}
            value={value('title')}
            maxLength={TITLE_MAX * 2}
            required
            aria-invalid={invalid}
            aria-describedby={describedBy}
            autoComplete="off"
            onChange={(e) => setDraft('title', e.target.value)}
            onBlur={() => drafts.title !== undefined && void commit('title', drafts.title)}
            onKeyDown={(e) => {
              if (e.key === 'Enter') {
                e.preventDefault();
                if (drafts.title !== undefined) void commit('title', drafts.title);
              } else if (e.key === 'Escape' && drafts.title !== undefined && drafts.title !== task.title) {
                // First Escape puts the saved title back; the next one closes the drawer.
                e.preventDefault();
                forget('title');
                saver.clearFieldError('title');
              }
            }}
            className={`${CONTROL} text-base font-medium`}
          />
        )}
      </Field>

      <div className="grid gap-4 sm:grid-cols-2">
        <Field label="Status" error={saver.fieldErrors.status}>
          {({ id, describedBy, invalid }) => (
            <select
              id={id}
              value={value('status')}
              aria-invalid={invalid}
              aria-describedby={describedBy}
              onChange={(e) => change('status', e.target.value as Task['status'])}
              className={CONTROL}
            >
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {STATUS_LABELS[s]}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Priority" error={saver.fieldErrors.priority}>
          {({ id, describedBy, invalid }) => (
            <select
              id={id}
              value={value('priority')}
              aria-invalid={invalid}
              aria-describedby={describedBy}
              onChange={(e) => change('priority', e.target.value as Task['priority'])}
              className={CONTROL}
            >
              {PRIORITIES.map((p) => (
                <option key={p} value={p}>
                  {PRIORITY_LABELS[p]}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Assignee" error={saver.fieldErrors.assignee_id}>
          {({ id, describedBy, invalid }) => (
            <select
              id={id}
              value={assignee}
              aria-invalid={invalid}
              aria-describedby={describedBy}
              onChange={(e) => change('assignee_id', e.target.value)}
              className={CONTROL}
            >
              <option value="">Unassigned</option>
              {options.map((o) => (
                <option key={o.id} value={o.id}>
                  {o.id === user.id ? `${o.name} (you)` : o.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field
          label="Due date"
          error={saver.fieldErrors.due_date}
          aside={
            value('due_date') !== '' ? (
              <button
                type="button"
                className="rounded text-xs font-medium text-indigo-700 underline-offset-2 hover:underline"
                onClick={() => change('due_date', '')}
              >
                Clear due date
              </button>
            ) : null
          }
        >
          {({ id, describedBy, invalid }) => (
            <input
              id={id}
              type="date"
              value={value('due_date')}
              aria-invalid={invalid}
              aria-describedby={describedBy}
              onChange={(e) => setDraft('due_date', e.target.value)}
              onBlur={() => drafts.due_date !== undefined && void commit('due_date', drafts.due_date)}
              onKeyDown={(e) => {
                if (e.key === 'Enter') {
                  e.preventDefault();
                  if (drafts.due_date !== undefined) void commit('due_date', drafts.due_date);
                }
              }}
              className={CONTROL}
            />
          )}
        </Field>
      </div>

      <LabelsField labels={value('labels')} error={saver.fieldErrors.labels} onChange={(labels) => change('labels', labels)} />
    </div>
  );
}

/** The same facts for viewers and guests, as text. */
export function TaskFacts({ task, names }: { task: Task; names: Record<string, string | undefined> }) {
  const row = (term: string, detail: ReactNode) => (
    <div className="min-w-0">
      <dt className="text-xs font-medium uppercase tracking-wide text-zinc-600">{term}</dt>
      <dd className="mt-0.5 text-sm text-zinc-900">{detail}</dd>
    </div>
  );
  return (
    <dl className="grid grid-cols-2 gap-x-4 gap-y-3" data-testid="task-facts">
      {row('Status', STATUS_LABELS[task.status] ?? task.status)}
      {row('Priority', PRIORITY_LABELS[task.priority] ?? task.priority)}
      {row('Assignee', task.assignee_id ? (names[task.assignee_id] ?? '…') : 'Unassigned')}
      {row('Due date', task.due_date ? <time dateTime={task.due_date}>{formatDueDate(task.due_date)}</time> : 'None')}
      <div className="col-span-2 min-w-0">
        <dt className="text-xs font-medium uppercase tracking-wide text-zinc-600">Labels</dt>
        <dd className="mt-1 text-sm text-zinc-900">{task.labels.length > 0 ? <LabelChips labels={task.labels} /> : 'None'}</dd>
      </div>
    </dl>
  );
}
