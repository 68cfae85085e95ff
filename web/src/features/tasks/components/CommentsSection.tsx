// The task's comments: oldest first (`<ul aria-label="Comments">`), a page at a time, each with
// its author, a relative time and the body as Markdown; the author edits or deletes their own
// (project owners and admins may delete any). The "Comment" form posts with an Idempotency-Key.
import { useEffect, useId, useRef, useState } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, errorMessage, newIdempotencyKey } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import { createComment, deleteComment, updateComment, useComments } from '../api';
import { COMMENT_MAX } from '../logic';
import type { Comment } from '../types';
import { ConfirmAction } from './ConfirmAction';
import { Markdown } from './Markdown';
import { RelativeTime } from './RelativeTime';

const TEXTAREA =
  'block w-full min-h-24 resize-y rounded-md border-0 bg-white px-3 py-2 text-sm text-zinc-900 shadow-sm ring-1 ring-inset ring-zinc-300 placeholder:text-zinc-500 focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600 aria-invalid:ring-red-500';

function commentError(body: string): string | null {
  if (body.trim() === '') return 'Write something first.';
  if (body.length > COMMENT_MAX) return `A comment can be at most ${COMMENT_MAX.toLocaleString('en')} characters (now ${body.length.toLocaleString('en')}).`;
  return null;
}

/** The API's message for a comment body it refused (422), else null. */
function bodyError(e: unknown): string | null {
  if (!(e instanceof ApiError) || e.status !== 422) return null;
  return e.fieldErrors.find((f) => f.field.replace(/^\/+/, '') === 'body')?.message ?? errorMessage(e);
}

export function CommentsSection({
  taskId,
  canComment,
  isProjectOwner,
  names,
}: {
  taskId: string;
  canComment: boolean;
  /** Owners (and admins) may delete anyone's comment. */
  isProjectOwner: boolean;
  names: Record<string, string | undefined>;
}) {
  const query = useComments(taskId, true);
  const comments = query.data?.pages.flatMap((p) => p.items) ?? [];
  const [announcement, setAnnouncement] = useState('');

  return (
    <section className="space-y-3">
      <h3 className="text-sm font-semibold text-zinc-900">
        Comments{comments.length > 0 && <span className="ml-1.5 font-normal text-zinc-600">({comments.length}{query.hasNextPage ? '+' : ''})</span>}
      </h3>
      <p role="status" className="sr-only">
        {announcement}
      </p>
      {query.isPending ? (
        <p role="status" className="text-sm text-zinc-600">
          Loading comments…
        </p>
      ) : query.isError && comments.length === 0 ? (
        <div className="space-y-2">
          <ErrorSummary error={query.error} />
          <Button variant="secondary" onClick={() => void query.refetch()}>
            Try again
          </Button>
        </div>
      ) : comments.length === 0 ? (
        <p className="text-sm text-zinc-600">No comments yet.</p>
      ) : (
        <>
          <ul aria-label="Comments" className="space-y-3">
            {comments.map((c) => (
              <CommentItem
                key={c.id}
                comment={c}
                names={names}
                canComment={canComment}
                isProjectOwner={isProjectOwner}
                onAnnounce={setAnnouncement}
              />
            ))}
          </ul>
          {query.hasNextPage && (
            <Button variant="secondary" busy={query.isFetchingNextPage} onClick={() => void query.fetchNextPage()}>
              Load more comments
            </Button>
          )}
        </>
      )}
      {canComment ? (
        <CommentForm taskId={taskId} onPosted={() => setAnnouncement('Comment posted.')} />
      ) : (
        <p className="text-sm text-zinc-600">Viewers can read the comments but not add any.</p>
      )}
    </section>
  );
}

function CommentItem({
  comment,
  names,
  canComment,
  isProjectOwner,
  onAnnounce,
}: {
  comment: Comment;
  names: Record<string, string | undefined>;
  canComment: boolean;
  isProjectOwner: boolean;
  onAnnounce: (text: string) => void;
}) {
  const { accessToken, user } = useRequiredSession();
  const queryClient = useQueryClient();
  const mine = comment.author_id === user.id;
  const canEdit = mine && canComment;
  const canDelete = (mine && canComment) || isProjectOwner || user.role === 'admin';
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(comment.body);
  const [localError, setLocalError] = useState<string | null>(null);
  const editRef = useRef<HTMLButtonElement>(null);
  const textareaRef = useRef<HTMLTextAreaElement>(null);
  const wasEditing = useRef(false);
  const id = useId();
  const author = names[comment.author_id] ?? '…';
  const edited = comment.updated_at !== comment.created_at;

  useEffect(() => {
    if (editing) textareaRef.current?.focus();
    else if (wasEditing.current) editRef.current?.focus();
    wasEditing.current = editing;
  }, [editing]);

  const save = useMutation({
    mutationFn: (body: string) => updateComment(accessToken, comment.id, body),
    onSuccess: () => {
      setEditing(false);
      onAnnounce('Comment saved.');
      void queryClient.invalidateQueries({ queryKey: keys.comments(comment.task_id) });
    },
  });
  const remove = useMutation({
    mutationFn: () => deleteComment(accessToken, comment.id),
    onSuccess: () => {
      onAnnounce('Comment deleted.');
      void queryClient.invalidateQueries({ queryKey: keys.comments(comment.task_id) });
    },
  });

  function submit() {
    const problem = commentError(text);
    setLocalError(problem);
    if (!problem) save.mutate(text);
  }

  const fieldError = localError ?? bodyError(save.error);
  const otherError = save.error && !bodyError(save.error) ? save.error : remove.error;

  return (
    <li className="rounded-lg border border-zinc-200 bg-white px-3 py-2.5" data-testid="comment">
      <div className="flex flex-wrap items-baseline gap-x-2 text-sm">
        <span className="font-medium text-zinc-900">{author}</span>
        <RelativeTime iso={comment.created_at} className="text-xs text-zinc-600" />
        {edited && (
          <span className="text-xs text-zinc-600">
            (edited <RelativeTime iso={comment.updated_at} />)
          </span>
        )}
      </div>
      {editing ? (
        <div
          className="mt-2 space-y-2"
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              submit();
            } else if (e.key === 'Escape') {
              e.preventDefault();
              e.stopPropagation();
              if (text === comment.body) setEditing(false);
            }
          }}
        >
          <label htmlFor={id} className="block text-sm font-medium text-zinc-800">
            Edit comment
          </label>
          <textarea
            ref={textareaRef}
            id={id}
            value={text}
            onChange={(e) => {
              setText(e.target.value);
              setLocalError(null);
            }}
            aria-invalid={fieldError ? true : undefined}
            aria-describedby={fieldError ? `${id}-error` : undefined}
            className={TEXTAREA}
          />
          {fieldError && (
            <p id={`${id}-error`} className="text-sm text-red-700">
              {fieldError}
            </p>
          )}
          <div className="flex flex-wrap gap-2">
            <Button busy={save.isPending} onClick={submit}>
              Save comment
            </Button>
            <Button
              variant="secondary"
              disabled={save.isPending}
              onClick={() => {
                setEditing(false);
                save.reset();
                setLocalError(null);
              }}
            >
              Cancel
            </Button>
          </div>
        </div>
      ) : (
        <Markdown source={comment.body} names={names} className="mt-1" />
      )}
      {otherError ? <div className="mt-2"><ErrorSummary error={otherError} /></div> : null}
      {!editing && (canEdit || canDelete) && (
        <div className="mt-2 flex flex-wrap items-center gap-2">
          {canEdit && (
            <button
              ref={editRef}
              type="button"
              onClick={() => {
                setText(comment.body);
                save.reset();
                setEditing(true);
              }}
              className="inline-flex min-h-8 items-center rounded-md px-2.5 text-xs font-medium text-zinc-700 ring-1 ring-inset ring-zinc-300 hover:bg-zinc-50"
            >
              Edit comment
            </button>
          )}
          {canDelete && (
            <ConfirmAction
              small
              label="Delete comment"
              question="Delete this comment?"
              confirmLabel="Yes, delete the comment"
              busy={remove.isPending}
              onConfirm={() => remove.mutate()}
            />
          )}
        </div>
      )}
    </li>
  );
}

function CommentForm({ taskId, onPosted }: { taskId: string; onPosted: () => void }) {
  const { accessToken } = useRequiredSession();
  const queryClient = useQueryClient();
  const [body, setBody] = useState('');
  const [localError, setLocalError] = useState<string | null>(null);
  // One key per text: a retry of the same comment is recognised, a new text gets a new key.
  const keyRef = useRef<{ body: string; key: string | undefined } | null>(null);
  const id = useId();

  const post = useMutation({
    mutationFn: (text: string) => {
      if (keyRef.current?.body !== text) keyRef.current = { body: text, key: newIdempotencyKey() };
      return createComment(accessToken, taskId, text, keyRef.current.key);
    },
    onSuccess: () => {
      setBody('');
      keyRef.current = null;
      onPosted();
      void queryClient.invalidateQueries({ queryKey: keys.comments(taskId) });
    },
  });

  function submit() {
    const problem = commentError(body);
    setLocalError(problem);
    if (!problem) post.mutate(body);
  }

  const fieldError = localError ?? bodyError(post.error);
  const describedBy = [fieldError ? `${id}-error` : null, `${id}-hint`].filter(Boolean).join(' ');

  return (
    <form
      className="space-y-2"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <label htmlFor={id} className="block text-sm font-medium text-zinc-800">
        Comment
      </label>
      <textarea
        id={id}
        value={body}
        placeholder="Write a comment (Markdown)"
        onChange={(e) => {
          setBody(e.target.value);
          setLocalError(null);
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            submit();
          }
        }}
        aria-invalid={fieldError ? true : undefined}
        aria-describedby={describedBy}
        className={TEXTAREA}
      />
      {fieldError && (
        <p id={`${id}-error`} className="text-sm text-red-700">
          {fieldError}
        </p>
      )}
      <p id={`${id}-hint`} className="text-xs text-zinc-600">
        Markdown works here. Ctrl+Enter posts.
      </p>
      {post.error && !bodyError(post.error) ? <ErrorSummary error={post.error} /> : null}
      <Button type="submit" busy={post.isPending}>
        Post comment
      </Button>
    </form>
  );
}
