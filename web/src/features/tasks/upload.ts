// Uploads a file to a task with XMLHttpRequest (fetch cannot report upload progress): multipart
// form with one `file` part, bearer token, Idempotency-Key; a 401 renews the token and retries
// once, like apiRequest does. Errors come back as the same ApiError the rest of the app uses.
import { ApiError, problemFromBody, renewAccessToken } from '@/lib/api';
import type { Attachment } from './types';

export type UploadProgress = { loaded: number; total: number };

type UploadOptions = {
  taskId: string;
  file: File;
  token: string;
  idempotencyKey?: string;
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
};

/** The percentage (0–100, whole) of an upload, or null while the total is unknown. */
export function progressPercent(p: UploadProgress | null): number | null {
  if (!p || !(p.total > 0)) return null;
  return Math.min(100, Math.max(0, Math.floor((p.loaded / p.total) * 100)));
}

function parseBody(xhr: XMLHttpRequest): unknown {
  try {
    return xhr.responseText ? JSON.parse(xhr.responseText) : undefined;
  } catch {
    return undefined;
  }
}

function sendOnce(options: UploadOptions, token: string): Promise<{ status: number; body: unknown; requestId: string | null }> {
  const { taskId, file, idempotencyKey, onProgress, signal } = options;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/tasks/${encodeURIComponent(taskId)}/attachments`);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    if (idempotencyKey) xhr.setRequestHeader('Idempotency-Key', idempotencyKey);
    xhr.upload.onprogress = (e) => onProgress?.({ loaded: e.loaded, total: e.lengthComputable ? e.total : file.size });
    xhr.onload = () => resolve({ status: xhr.status, body: parseBody(xhr), requestId: xhr.getResponseHeader('x-request-id') });
    xhr.onerror = () => resolve({ status: 0, body: undefined, requestId: null });
    xhr.onabort = () => reject(new DOMException('The upload was cancelled.', 'AbortError'));
    if (signal) {
      if (signal.aborted) {
        reject(new DOMException('The upload was cancelled.', 'AbortError'));
        return;
      }
      signal.addEventListener('abort', () => xhr.abort(), { once: true });
    }
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

/** Uploads `file`; resolves with the new attachment, rejects with an ApiError (status 0 offline). */
export async function uploadAttachment(options: UploadOptions): Promise<Attachment> {
  let result = await sendOnce(options, options.token);
  if (result.status === 401) {
    const fresh = await renewAccessToken();
    if (fresh) {
      options.onProgress?.({ loaded: 0, total: options.file.size });
      result = await sendOnce(options, fresh);
    }
  }
  if (result.status >= 200 && result.status < 300) return result.body as Attachment;
  if (result.status === 0) {
    throw new ApiError({
      type: 'about:blank',
      title: 'Cannot reach the server',
      status: 0,
      detail: 'Cannot reach the Trellis server. Check your connection and try again.',
    });
  }
  const problem = problemFromBody(result.body, result.status);
  if (!problem.request_id && result.requestId) problem.request_id = result.requestId;
  throw new ApiError(problem);
}
