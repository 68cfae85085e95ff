// Downloads an attachment: GET /api/attachments/{id} needs the bearer token, so the file is
// fetched, kept as a Blob and saved through a temporary object URL and `<a download>`. (With S3
// storage the server answers 303 to a presigned URL, which fetch follows by itself.)
import { apiResponse } from '@/lib/api';

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

export async function downloadAttachment(token: string, attachmentId: string, fallbackName: string): Promise<void> {
  const res = await apiResponse(`/api/attachments/${encodeURIComponent(attachmentId)}`, {
    token,
    headers: { Accept: '*/*' },
  });
  const blob = await res.blob();
  const name = dispositionFileName(res.headers.get('content-disposition')) ?? fallbackName;
  const url = URL.createObjectURL(blob);
  try {
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.rel = 'noopener';
    document.body.append(a);
    a.click();
    a.remove();
  } finally {
    // Give the browser a moment to start the download before the URL goes.
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
