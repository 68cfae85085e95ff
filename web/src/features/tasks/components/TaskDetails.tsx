// The task details panel: a side drawer (Dialog `side`) over the board with every field of the
// task (autosaved, see TaskFields), its Markdown description, attachments and comments, and
// "Delete task". Loading, "This task no longer exists" (404) and error states included.
import { useMemo } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Dialog } from '@/components/ui/Dialog';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import { useMembers } from '@/features/members/api';
import { useProject } from '@/features/projects/api';
import { useUserNames } from '@/features/users/api';
import { deleteTask, isNotFound, useTask } from '../api';
import { canEditTasks } from '../logic';
import type { Task } from '../types';
import { useTaskSaver, type TaskSaver } from '../useTaskSaver';
import { AttachmentsSection } from './AttachmentsSection';
import { CommentsSection } from './CommentsSection';
import { ConfirmAction } from './ConfirmAction';
import { DescriptionSection } from './DescriptionSection';
import { RelativeTime } from './RelativeTime';
import { TaskFacts, TaskFields } from './TaskFields';

export function TaskDetails({ taskId, projectId, onClose }: { taskId: string; projectId: string; onClose: () => void }) {
  const taskQuery = useTask(taskId);
  const projectQuery = useProject(projectId);
  const task = taskQuery.data?.task;
  const notFound = isNotFound(taskQuery.error);

  const title = notFound ? 'Task not found' : (task?.title ?? (taskQuery.isError ? 'Task' : 'Loading task…'));

  return (
    <Dialog open side title={title} onClose={onClose} className="[&>div>h2]:break-words [&>div>h2]:pr-14">
      <button
        type="button"
        onClick={onClose}
        aria-label="Close"
        title="Close (Esc)"
        className="absolute right-3 top-3 grid size-10 place-items-center rounded-md text-zinc-600 hover:bg-zinc-100 hover:text-zinc-900"
      >
        <svg aria-hidden="true" viewBox="0 0 20 20" className="size-5" fill="none" stroke="currentColor" strokeWidth="1.75">
          <path d="M5 5l10 10M15 5L5 15" strokeLinecap="round" />
        </svg>
      </button>
      <div className="min-h-0 flex-1 overflow-y-auto px-5 pb-10 pt-1" data-testid="task-details">
        {notFound ? (
          <div role="alert" className="space-y-3 rounded-lg border border-dashed border-zinc-300 px-4 py-8 text-center">
            <p className="text-sm font-medium text-zinc-900">This task no longer exists</p>
            <p className="text-sm text-zinc-600">Someone may have deleted it, or you no longer have access to its project.</p>
            <Button variant="secondary" onClick={onClose}>
              Go back
            </Button>
          </div>
        ) : task && !projectQuery.isPending ? (
          <TaskBody
            // A new task starts with fresh drafts, errors and save queue.
            key={task.id}
            task={task}
            projectId={projectId}
            projectRole={projectQuery.data?.project.role}
            onClose={onClose}
          />
        ) : taskQuery.isError ? (
          <div className="space-y-3">
            <ErrorSummary error={taskQuery.error} />
            <Button variant="secondary" busy={taskQuery.isFetching} onClick={() => void taskQuery.refetch()}>
              Try again
            </Button>
          </div>
        ) : (
          <p role="status" className="py-10 text-center text-sm text-zinc-600">
            Loading task…
          </p>
        )}
      </div>
    </Dialog>
  );
}

function TaskBody({
  task,
  projectId,
  projectRole,
  onClose,
}: {
  task: Task;
  projectId: string;
  projectRole: string | undefined;
  onClose: () => void;
}) {
  const { user } = useRequiredSession();
  const canEdit = canEditTasks(projectRole, user.role);
  const isOwner = user.role === 'admin' || projectRole === 'owner';
  const saver = useTaskSaver(task.id, projectId);
  const members = useMembers(projectId);
  const memberIds = useMemo(() => (members.data ?? []).map((m) => m.user_id), [members.data]);
  const names = useUserNames(
    useMemo(
      () => [...memberIds, task.created_by, ...(task.assignee_id ? [task.assignee_id] : [])],
      [memberIds, task.created_by, task.assignee_id],
    ),
  );

  return (
    <div className="space-y-6">
      <div className="space-y-2">
        <SaveStatus saver={saver} />
        {canEdit ? <TaskFields task={task} saver={saver} memberIds={memberIds} names={names} /> : <TaskFacts task={task} names={names} />}
        {!canEdit && (
          <p className="rounded-md bg-zinc-100 px-3 py-2 text-xs text-zinc-700">
            You can read this task. Only the project’s owners and editors can change it.
          </p>
        )}
      </div>
      <DescriptionSection task={task} canEdit={canEdit} saver={saver} names={names} />
      <p className="text-xs text-zinc-600" data-testid="task-meta">
        Created by <span className="font-medium text-zinc-800">{names[task.created_by] ?? '…'}</span>{' '}
        <RelativeTime iso={task.created_at} />
        {task.updated_at !== task.created_at && (
          <>
            {' '}
            · updated <RelativeTime iso={task.updated_at} />
          </>
        )}
      </p>
      <AttachmentsSection taskId={task.id} canEdit={canEdit} names={names} />
      <CommentsSection taskId={task.id} canComment={canEdit} isProjectOwner={isOwner} names={names} />
      {canEdit && <DeleteTask task={task} projectId={projectId} onClose={onClose} />}
    </div>
  );
}

/** "Saving…", "All changes saved" or what went wrong, announced politely. */
function SaveStatus({ saver }: { saver: TaskSaver }) {
  const text = saver.state === 'saving' ? 'Saving…' : saver.state === 'saved' ? 'All changes saved' : saver.state === 'failed' ? 'Not saved' : '';
  return (
    <div className="space-y-2">
      <p role="status" data-testid="save-status" className={`min-h-4 text-xs ${saver.state === 'failed' ? 'text-red-700' : 'text-zinc-600'}`}>
        {text}
      </p>
      {saver.error && !saver.conflict ? <ErrorSummary error={saver.error} otherErrors={saver.otherErrors} /> : null}
    </div>
  );
}

function DeleteTask({ task, projectId, onClose }: { task: Task; projectId: string; onClose: () => void }) {
  const { accessToken } = useRequiredSession();
  const queryClient = useQueryClient();
  const remove = useMutation({
    mutationFn: () => {
      const etag = queryClient.getQueryData<{ etag: string | null }>(keys.task(task.id))?.etag ?? null;
      return deleteTask(accessToken, task.id, etag);
    },
    onSuccess: () => {
      onClose();
      void queryClient.invalidateQueries({ queryKey: keys.tasks(projectId) });
      // After the drawer has gone, so nothing refetches the deleted task.
      setTimeout(() => {
        queryClient.removeQueries({ queryKey: keys.task(task.id) });
        queryClient.removeQueries({ queryKey: keys.comments(task.id) });
        queryClient.removeQueries({ queryKey: keys.attachments(task.id) });
      }, 0);
    },
    onError: (e) => {
      if (e instanceof ApiError && e.status === 404) onClose();
    },
  });
  const stale = remove.error instanceof ApiError && remove.error.status === 412;

  return (
    <section aria-label="Danger zone" className="border-t border-zinc-200 pt-4">
      {stale ? (
        <div role="alert" className="mb-3 rounded-md border border-amber-200 bg-amber-50 px-3 py-2.5 text-sm text-amber-800">
          <p className="font-medium">Someone else changed this task</p>
          <p className="mt-1">It changed after you opened it, so it was not deleted. Look at their version first.</p>
          <button
            type="button"
            className="mt-2 inline-flex min-h-9 items-center rounded-md bg-white px-3 text-sm font-medium text-zinc-800 shadow-sm ring-1 ring-inset ring-zinc-300 hover:bg-zinc-50"
            onClick={() => {
              remove.reset();
              void queryClient.invalidateQueries({ queryKey: keys.task(task.id) });
            }}
          >
            Load their version
          </button>
        </div>
      ) : remove.error ? (
        <div className="mb-3">
          <ErrorSummary error={remove.error} />
        </div>
      ) : null}
      <ConfirmAction
        label="Delete task"
        question="Delete this task with its comments and files? This cannot be undone."
        confirmLabel="Yes, delete the task"
        busy={remove.isPending}
        onConfirm={() => remove.mutate()}
      />
    </section>
  );
}
