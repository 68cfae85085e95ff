// Tests for describing a broken audit chain.
import { describe, expect, it } from 'vitest';
import { brokenChainDetails } from './verify';

const ID = '01a2111f-490c-73b8-a5cb-e874ba0f7e14';

describe('brokenChainDetails', () => {
  it('names the first bad entry and why', () => {
    expect(brokenChainDetails({ ok: false, checked: 4, first_bad_id: ID, first_broken: { seq: 5, event_id: ID, reason: 'hash_mismatch' } })).toEqual([
      `First bad entry: #5 (event ${ID}): its hash does not match its contents.`,
    ]);
  });

  it('names a broken archive, and a missing entry without an id', () => {
    expect(
      brokenChainDetails({
        ok: false,
        checked: 0,
        first_bad_id: null,
        first_broken: { seq: 3, event_id: null, reason: 'missing' },
        broken_archive: { object_key: 'audit/archive/1-10.jsonl.gz', first_seq: 1, last_seq: 10, reason: 'sha256_mismatch' },
      }),
    ).toEqual(['Archive audit/archive/1-10.jsonl.gz (entries 1–10): its SHA-256 does not match.', 'First bad entry: #3: the entry is missing.']);
  });

  it('falls back to the bare id or an honest sentence', () => {
    expect(brokenChainDetails({ ok: false, checked: 1, first_bad_id: ID })).toEqual([`First bad entry: event ${ID}.`]);
    expect(brokenChainDetails({ ok: false, checked: 1 })).toEqual(['The server did not say where.']);
    expect(brokenChainDetails({ ok: false, checked: 1, first_broken: { seq: 2, reason: 'new_reason' } })).toEqual(['First bad entry: #2: new_reason.']);
  });
});
