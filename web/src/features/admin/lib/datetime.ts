// Conversions between an <input type="datetime-local"> value (local wall time, minutes) and the
// RFC 3339 UTC instants the API takes and gives.

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?$/;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/**
 * `2026-03-01T14:30` (local time) → `2026-03-01T13:30:00Z` (UTC). With `endOfMinute`, the last
 * millisecond of that minute (for an inclusive "to"). Null for an empty or invalid value.
 */
export function localInputToRfc3339(value: string, endOfMinute = false): string | null {
  const m = LOCAL.exec(value.trim());
  if (!m) return null;
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number, number];
  const second = m[6] ? Number(m[6]) : endOfMinute ? 59 : 0;
  const ms = m[7] ? Number(m[7].padEnd(3, '0')) : endOfMinute && !m[6] ? 999 : 0;
  const date = new Date(year, month - 1, day, hour, minute, second, ms);
  if (
    Number.isNaN(date.getTime()) ||
    date.getFullYear() !== year ||
    date.getMonth() !== month - 1 ||
    date.getDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    return null;
  }
  const iso = date.toISOString();
  return ms === 0 ? iso.replace('.000Z', 'Z') : iso;
}

/** An RFC 3339 instant → the `YYYY-MM-DDTHH:mm` a datetime-local input shows (local time). */
export function rfc3339ToLocalInput(value: string): string {
  const date = new Date(value);
  if (value === '' || Number.isNaN(date.getTime())) return '';
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Whether a string is an RFC 3339 date-time with an offset (what the API accepts). */
export function isRfc3339(value: string): boolean {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(value) && !Number.isNaN(Date.parse(value));
}
