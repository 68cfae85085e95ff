// Tests for the recovery-code file and clipboard text.
import { describe, expect, it } from 'vitest';
import { RECOVERY_CODES_FILENAME, recoveryCodesClipboardText, recoveryCodesFileText } from './recoveryCodes';

const codes = Array.from({ length: 10 }, (_, i) => `code${i}-abcde-fghij`);

describe('recoveryCodesFileText', () => {
  const text = recoveryCodesFileText(codes, 'ada@example.com', new Date('2026-11-25T23:59:00Z'));
  const lines = text.split('\n');

  it('names the account and the date', () => {
    expect(lines[0]).toBe('Trellis recovery codes for ada@example.com');
    expect(lines[1]).toBe('Created 2026-11-25');
  });

  it('lists every code once, numbered and aligned, in order', () => {
    const listed = lines.filter((l) => /^\s*\d+\. /.test(l));
    expect(listed).toHaveLength(10);
    expect(listed[0]).toBe(' 1. code0-abcde-fghij');
    expect(listed[9]).toBe('10. code9-abcde-fghij');
    for (const code of codes) expect(text.split(code)).toHaveLength(2);
  });

  it('explains single use and ends with a newline', () => {
    expect(text).toMatch(/Each code works once/);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('uses the agreed file name', () => {
    expect(RECOVERY_CODES_FILENAME).toBe('trellis-recovery-codes.txt');
  });
});

describe('recoveryCodesClipboardText', () => {
  it('puts one code a line and nothing else', () => {
    expect(recoveryCodesClipboardText(['a', 'b', 'c'])).toBe('a\nb\nc');
  });
});
