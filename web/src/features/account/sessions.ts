// Order of the sessions list: this device first, then the most recently used.
import type { SessionInfo } from './api';

export function sortSessions(sessions: readonly SessionInfo[]): SessionInfo[] {
  return [...sessions].sort((a, b) => {
    if (a.current !== b.current) return a.current ? -1 : 1;
    const diff = Date.parse(b.last_used_at) - Date.parse(a.last_used_at);
    return Number.isNaN(diff) || diff === 0 ? a.id.localeCompare(b.id) : diff;
  });
}
