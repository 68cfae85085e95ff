// Downloads an attachment. First GET /api/attachments/{id}/link: with S3 storage it names a
// short-lived presigned URL on the bucket's origin, which the page opens (the object is served
// as an attachment, so the page stays; a fetch could not cross origins under the CSP). With
// local storage it is null: GET /api/attachments/{id} needs the bearer token, so the file is
// fetched, kept as a Blob and saved through a temporary object URL and `<a download>`.
import { apiRequest, apiResponse } from '@/lib/api';

/** The file name of a `Content-Disposition` header (RFC 6266: `filename*` wins), if any. */
export function dispositionFileName(header: string | null): string | null {
  if (!header) return null;
  const star = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
  if (star?.[2]) {
    try {
      return decodeURIComponent(star[2].trim());
    } catch {
      // fall through to the plain parameter
    }
  }
  const plain = /filename\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]+)/i.exec(header);
  if (!plain) return null;
  const value = plain[2] !== undefined ? plain[2].replace(/\\(.)/g, '$1') : (plain[1] ?? '');
  return value.trim() || null;
}

/** Opens a URL the way a link click would (downloads stay on the page). */
function follow(href: string, name?: string): void {
  const a = document.createElement('a');
  a.href = href;
  if (name) a.download = name;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
}

export async function downloadAttachment(token: string, attachmentId: string, fallbackName: string): Promise<void> {
  const link = await apiRequest<{ url: string | null }>(`/api/attachments/${encodeURIComponent(attachmentId)}/link`, { token });
  if (link?.url) {
    follow(link.url);
    return;
  }
  const res = await apiResponse(`/api/attachments/${encodeURIComponent(attachmentId)}`, {
    token,
    headers: { Accept: '*/*' },
  });
  const blob = await res.blob();
  const name = dispositionFileName(res.headers.get('content-disposition')) ?? fallbackName;
  const url = URL.createObjectURL(blob);
  try {
    follow(url, name);
  } finally {
    // Give the browser a moment to start the download before the URL goes.
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
