// The task's files: `<ul aria-label="Attachments">` with name, size, scan status, a download
// button for available files and a delete (owners and editors); an "Attach a file" input (or a
// file dropped on the area) uploads with a progress bar. The server's size and type refusals
// (413, 415, 422) are shown as sentences.
import { useRef, useState, type DragEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Button } from '@/components/ui/Button';
import { ErrorSummary } from '@/components/ErrorSummary';
import { ApiError, errorMessage, newIdempotencyKey } from '@/lib/api';
import { keys } from '@/lib/queryKeys';
import { useRequiredSession } from '@/features/auth/session';
import { deleteAttachment, useAttachments } from '../api';
import { downloadAttachment } from '../download';
import { attachmentState, formatFileSize, uploadErrorMessage } from '../logic';
import { progressPercent, uploadAttachment, type UploadProgress } from '../upload';
import type { Attachment } from '../types';
import { ConfirmAction } from './ConfirmAction';
import { RelativeTime } from './RelativeTime';

const TONE: Record<'pending' | 'ok' | 'bad', string> = {
  pending: 'bg-amber-50 text-amber-800 ring-amber-200',
  ok: 'bg-emerald-50 text-emerald-800 ring-emerald-200',
  bad: 'bg-red-50 text-red-800 ring-red-200',
};

type Upload = { name: string; size: number; progress: UploadProgress | null; abort: AbortController };

export function AttachmentsSection({ taskId, canEdit, names }: { taskId: string; canEdit: boolean; names: Record<string, string | undefined> }) {
  const { accessToken } = useRequiredSession();
  const queryClient = useQueryClient();
  const query = useAttachments(taskId, true);
  const items = query.data?.pages.flatMap((p) => p.items) ?? [];
  const [upload, setUpload] = useState<Upload | null>(null);
  const [uploadError, setUploadError] = useState<string | null>(null);
  const [announcement, setAnnouncement] = useState('');
  const [dragging, setDragging] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);

  async function start(file: File) {
    if (upload) return;
    setUploadError(null);
    const abort = new AbortController();
    setUpload({ name: file.name, size: file.size, progress: { loaded: 0, total: file.size }, abort });
    try {
      const attachment = await uploadAttachment({
        taskId,
        file,
        token: accessToken,
        idempotencyKey: newIdempotencyKey(),
        signal: abort.signal,
        onProgress: (progress) => setUpload((u) => (u ? { ...u, progress } : u)),
      });
      setAnnouncement(`${attachment.filename} uploaded.`);
      await queryClient.invalidateQueries({ queryKey: keys.attachments(taskId) });
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') {
        setAnnouncement('Upload cancelled.');
      } else {
        const status = e instanceof ApiError ? e.status : -1;
        const detail = e instanceof ApiError ? e.problem.detail : undefined;
        setUploadError(status === -1 ? errorMessage(e) : uploadErrorMessage(status, file.name, detail, file.size));
      }
    } finally {
      setUpload(null);
      if (inputRef.current) inputRef.current.value = '';
    }
  }

  function onDrop(e: DragEvent) {
    e.preventDefault();
    setDragging(false);
    const file = e.dataTransfer.files[0];
    if (file && canEdit) void start(file);
  }

  const percent = progressPercent(upload?.progress ?? null);

  return (
    <section className="space-y-3">
      <h3 className="text-sm font-semibold text-zinc-900">
        Attachments{items.length > 0 && <span className="ml-1.5 font-normal text-zinc-600">({items.length})</span>}
      </h3>
      <p role="status" className="sr-only">
        {announcement}
      </p>

      {query.isPending ? (
        <p role="status" className="text-sm text-zinc-600">
          Loading attachments…
        </p>
      ) : query.isError && items.length === 0 ? (
        <div className="space-y-2">
          <ErrorSummary error={query.error} />
          <Button variant="secondary" onClick={() => void query.refetch()}>
            Try again
          </Button>
        </div>
      ) : items.length === 0 ? (
        <p className="text-sm text-zinc-600">No files attached yet.</p>
      ) : (
        <>
          <ul aria-label="Attachments" className="divide-y divide-zinc-200 rounded-lg border border-zinc-200 bg-white">
            {items.map((a) => (
              <AttachmentItem key={a.id} attachment={a} canEdit={canEdit} names={names} onAnnounce={setAnnouncement} />
            ))}
          </ul>
          {query.hasNextPage && (
            <Button variant="secondary" busy={query.isFetchingNextPage} onClick={() => void query.fetchNextPage()}>
              Load more attachments
            </Button>
          )}
        </>
      )}

      {canEdit && (
        <div
          data-testid="attachment-dropzone"
          onDragOver={(e) => {
            if (!e.dataTransfer.types.includes('Files')) return;
            e.preventDefault();
            e.dataTransfer.dropEffect = 'copy';
            setDragging(true);
          }}
          onDragLeave={(e) => {
            if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
          }}
          onDrop={onDrop}
          className={`space-y-2 rounded-lg border-2 border-dashed px-3 py-3 transition-colors ${
            dragging ? 'border-indigo-500 bg-indigo-50' : 'border-zinc-300'
          }`}
        >
          <label htmlFor={`${taskId}-file`} className="block text-sm font-medium text-zinc-800">
            Attach a file
          </label>
          <input
            ref={inputRef}
            id={`${taskId}-file`}
            type="file"
            disabled={upload !== null}
            aria-describedby={`${taskId}-file-hint`}
            onChange={(e) => {
              const file = e.target.files?.[0];
              if (file) void start(file);
            }}
            className="block w-full text-sm text-zinc-700 file:mr-3 file:min-h-9 file:cursor-pointer file:rounded-md file:border-0 file:bg-indigo-600 file:px-3 file:text-sm file:font-medium file:text-white hover:file:bg-indigo-700 disabled:opacity-60"
          />
          <p id={`${taskId}-file-hint`} className="text-xs text-zinc-600">
            Choose a file or drop one here. The server checks its type and size.
          </p>
          {upload && (
            <div className="space-y-1" data-testid="upload-progress">
              <div className="flex items-center justify-between gap-2 text-xs text-zinc-700">
                <span className="truncate">
                  Uploading {upload.name} ({formatFileSize(upload.size)})
                </span>
                <span aria-hidden="true">{percent === null ? '' : `${percent} %`}</span>
              </div>
              <div
                role="progressbar"
                aria-label={`Uploading ${upload.name}`}
                aria-valuemin={0}
                aria-valuemax={100}
                aria-valuenow={percent ?? undefined}
                className="h-2 overflow-hidden rounded-full bg-zinc-200"
              >
                <div className="h-full rounded-full bg-indigo-600 transition-[width]" style={{ width: `${percent ?? 0}%` }} />
              </div>
              <button
                type="button"
                onClick={() => upload.abort.abort()}
                className="inline-flex min-h-8 items-center rounded-md px-2 text-xs font-medium text-zinc-700 ring-1 ring-inset ring-zinc-300 hover:bg-zinc-50"
              >
                Cancel upload
              </button>
            </div>
          )}
          {uploadError && (
            <div role="alert" className="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
              {uploadError}
            </div>
          )}
        </div>
      )}
    </section>
  );
}

function AttachmentItem({
  attachment: a,
  canEdit,
  names,
  onAnnounce,
}: {
  attachment: Attachment;
  canEdit: boolean;
  names: Record<string, string | undefined>;
  onAnnounce: (text: string) => void;
}) {
  const { accessToken } = useRequiredSession();
  const queryClient = useQueryClient();
  const state = attachmentState(a);
  const download = useMutation({ mutationFn: () => downloadAttachment(accessToken, a.id, a.filename) });
  const remove = useMutation({
    mutationFn: () => deleteAttachment(accessToken, a.id),
    onSuccess: () => {
      onAnnounce(`${a.filename} deleted.`);
      void queryClient.invalidateQueries({ queryKey: keys.attachments(a.task_id) });
    },
  });
  const uploader = names[a.uploaded_by];

  return (
    <li className="space-y-2 px-3 py-2.5" data-testid="attachment">
      <div className="flex flex-wrap items-start justify-between gap-x-3 gap-y-1">
        <div className="min-w-0">
          <p className="truncate text-sm font-medium text-zinc-900" title={a.filename}>
            {a.filename}
          </p>
          <p className="text-xs text-zinc-600">
            {formatFileSize(a.size)}
            {uploader && <> · {uploader}</>} · <RelativeTime iso={a.created_at} />
          </p>
        </div>
        <span className={`shrink-0 rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset ${TONE[state.tone]}`}>
          {state.label}
        </span>
      </div>
      <div className="flex flex-wrap items-center gap-2">
        {state.downloadable && (
          <button
            type="button"
            aria-label={`Download ${a.filename}`}
            onClick={() => download.mutate()}
            disabled={download.isPending}
            className="inline-flex min-h-8 items-center gap-1.5 rounded-md px-2.5 text-xs font-medium text-indigo-700 ring-1 ring-inset ring-indigo-200 hover:bg-indigo-50 disabled:opacity-60"
          >
            {download.isPending ? 'Downloading…' : 'Download'}
          </button>
        )}
        {canEdit && (
          <ConfirmAction
            small
            label={`Delete ${a.filename}`}
            text="Delete"
            question={`Delete ${a.filename}?`}
            confirmLabel="Yes, delete the file"
            busy={remove.isPending}
            onConfirm={() => remove.mutate()}
            triggerClassName="inline-flex min-h-8 items-center rounded-md px-2.5 text-xs font-medium text-red-700 ring-1 ring-inset ring-red-200 hover:bg-red-50"
          />
        )}
      </div>
      {download.error ? <ErrorSummary error={download.error} /> : null}
      {remove.error ? <ErrorSummary error={remove.error} /> : null}
    </li>
  );
}
