// Plain-language description of where the audit log's hash chain breaks (from the verify answer).
import type { AuditVerification } from '../types';

const ENTRY_REASONS: Record<string, string> = {
  missing: 'the entry is missing',
  hash_mismatch: 'its hash does not match its contents',
  prev_hash_mismatch: 'it does not link to the entry before it',
};

const ARCHIVE_REASONS: Record<string, string> = {
  object_missing: 'the archive object is missing',
  sha256_mismatch: 'its SHA-256 does not match',
  unreadable: 'it cannot be read',
  gap: 'it does not start where the previous archive ended',
  prev_hash_mismatch: 'it does not link to the previous archive',
  entry_broken: 'an entry inside it breaks the chain',
  count_mismatch: 'it holds a different number of entries than recorded',
  last_hash_mismatch: 'its last hash does not match the one recorded',
};

/** The sentences describing a broken chain. */
export function brokenChainDetails(result: AuditVerification): string[] {
  const lines: string[] = [];
  if (result.broken_archive) {
    const a = result.broken_archive;
    lines.push(`Archive ${a.object_key} (entries ${a.first_seq}–${a.last_seq}): ${ARCHIVE_REASONS[a.reason] ?? a.reason}.`);
  }
  const e = result.first_broken;
  const id = result.first_bad_id ?? e?.event_id ?? null;
  if (e) {
    lines.push(`First bad entry: #${e.seq}${id ? ` (event ${id})` : ''}: ${ENTRY_REASONS[e.reason] ?? e.reason}.`);
  } else if (id) {
    lines.push(`First bad entry: event ${id}.`);
  }
  if (lines.length === 0) lines.push('The server did not say where.');
  return lines;
}
