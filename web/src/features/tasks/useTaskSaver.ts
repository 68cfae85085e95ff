// Saves task changes: PATCH /api/tasks/{id} with only the changed fields and `If-Match` set to
// the ETag of the last read. Saves run one after another (each uses the ETag the previous one
// returned); a 412 raises the "Someone else changed this task" conflict, a 422 puts each message
// beside its field. The board and list are told (keys.tasks) after every change.
import { useCallback, useRef, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { ApiError, splitFieldErrors } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import { patchTask } from './api';
import { diffTask, validateDraft, type DraftField, type TaskDraft } from './logic';
import type { TaskWithEtag } from './types';

export const DRAFT_FIELDS: readonly DraftField[] = ['title', 'description', 'status', 'priority', 'assignee_id', 'due_date', 'labels'];

export type FieldErrors = Partial<Record<DraftField, string>>;
export type SaveResult = 'saved' | 'unchanged' | 'invalid' | 'conflict' | 'failed';
export type SaveState = 'idle' | 'saving' | 'saved' | 'failed';

export type TaskSaver = {
  save: (changes: Partial<TaskDraft>) => Promise<SaveResult>;
  state: SaveState;
  fieldErrors: FieldErrors;
  clearFieldError: (field: DraftField) => void;
  /** A failure that belongs to no field (network, 403, server error, other 422 messages). */
  error: unknown;
  otherErrors: string[];
  conflict: boolean;
  /** Forgets errors and the conflict (after "Load their version"). */
  reset: () => void;
  /** Reads the task again (their version, with its ETag). */
  reload: () => void;
};

export function useTaskSaver(taskId: string, projectId: string): TaskSaver {
  const { accessToken } = useRequiredSession();
  const queryClient = useQueryClient();
  const queue = useRef<Promise<unknown>>(Promise.resolve());
  const pending = useRef(0);
  const settled = useRef<SaveState>('idle');
  const [state, setState] = useState<SaveState>('idle');
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>(null);
  const [otherErrors, setOtherErrors] = useState<string[]>([]);
  const [conflict, setConflict] = useState(false);
  const conflictRef = useRef(false);

  const run = useCallback(
    async (changes: Partial<TaskDraft>): Promise<SaveResult> => {
      const fields = Object.keys(changes) as DraftField[];
      const invalid = validateDraft(changes);
      setFieldErrors((prev) => {
        const next = { ...prev };
        for (const f of fields) delete next[f];
        return { ...next, ...invalid };
      });
      if (Object.keys(invalid).length > 0) return 'invalid';
      // After a conflict nothing more is sent until the person has loaded the other version.
      if (conflictRef.current) return 'conflict';

      const current = queryClient.getQueryData<TaskWithEtag>(keys.task(taskId));
      if (!current) return 'failed';
      const patch = diffTask(current.task, changes);
      if (Object.keys(patch).length === 0) return 'unchanged';

      try {
        const next = await patchTask(accessToken, taskId, patch, current.etag);
        queryClient.setQueryData<TaskWithEtag>(keys.task(taskId), next);
        void queryClient.invalidateQueries({ queryKey: keys.tasks(projectId) });
        setError(null);
        setOtherErrors([]);
        return 'saved';
      } catch (e) {
        if (e instanceof ApiError && e.status === 412) {
          conflictRef.current = true;
          setConflict(true);
          return 'conflict';
        }
        if (e instanceof ApiError && e.status === 422 && e.fieldErrors.length > 0) {
          const { byField, other } = splitFieldErrors(e.fieldErrors, DRAFT_FIELDS);
          setFieldErrors((prev) => ({ ...prev, ...byField }));
          setOtherErrors(other);
          if (other.length > 0) setError(e);
          return 'invalid';
        }
        if (e instanceof ApiError && e.status === 404) {
          // Deleted meanwhile: reading it again shows "This task no longer exists".
          void queryClient.invalidateQueries({ queryKey: keys.task(taskId) });
        }
        setError(e);
        setOtherErrors([]);
        return 'failed';
      }
    },
    [accessToken, projectId, queryClient, taskId],
  );

  const save = useCallback(
    (changes: Partial<TaskDraft>): Promise<SaveResult> => {
      pending.current += 1;
      setState('saving');
      const result = queue.current.then(() => run(changes));
      queue.current = result.catch(() => undefined);
      return result.then((r) => {
        pending.current -= 1;
        // "Unchanged" sent nothing: the indicator goes back to what the last real save said.
        if (r !== 'unchanged') settled.current = r === 'saved' ? 'saved' : 'failed';
        if (pending.current === 0) setState(settled.current);
        return r;
      });
    },
    [run],
  );

  const clearFieldError = useCallback((field: DraftField) => {
    setFieldErrors((prev) => {
      if (!(field in prev)) return prev;
      const next = { ...prev };
      delete next[field];
      return next;
    });
  }, []);

  const reset = useCallback(() => {
    conflictRef.current = false;
    setConflict(false);
    setFieldErrors({});
    setError(null);
    setOtherErrors([]);
    settled.current = 'idle';
    setState('idle');
  }, []);

  const reload = useCallback(() => {
    void queryClient.invalidateQueries({ queryKey: keys.task(taskId) });
    void queryClient.invalidateQueries({ queryKey: keys.tasks(projectId) });
  }, [projectId, queryClient, taskId]);

  return { save, state, fieldErrors, clearFieldError, error, otherErrors, conflict, reset, reload };
}
