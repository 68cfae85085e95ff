// The text of the recovery-code file ("Download codes") and of the clipboard copy ("Copy codes").

export const RECOVERY_CODES_FILENAME = 'trellis-recovery-codes.txt';

/** One code a line, for the clipboard. */
export function recoveryCodesClipboardText(codes: readonly string[]): string {
  return codes.join('\n');
}

/**
 * The downloaded file: who and when, how to use the codes, then one numbered code a line.
 * CRLF line ends would be friendlier to old Notepad, but every editor today reads LF.
 */
export function recoveryCodesFileText(codes: readonly string[], email: string, when: Date): string {
  const width = String(codes.length).length;
  const lines = [
    `Trellis recovery codes for ${email}`,
    `Created ${when.toISOString().slice(0, 10)}`,
    '',
    'If you cannot use your authenticator app, sign in with one of these codes instead of the',
    '6-digit code. Each code works once. Keep this file somewhere safe, away from your password.',
    'Turning two-factor authentication off and on again makes new codes and voids these.',
    '',
    ...codes.map((code, i) => `${String(i + 1).padStart(width, ' ')}. ${code}`),
    '',
  ];
  return lines.join('\n');
}
