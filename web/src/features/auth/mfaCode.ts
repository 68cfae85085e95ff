// Tidies a typed two-factor code before it is sent: authenticator apps show "123 456", and
// people paste codes with spaces around them. Recovery codes keep their letters and dashes.

/** Removes every whitespace character; a 6-digit TOTP "123 456" becomes "123456". */
export function normalizeMfaCode(input: string): string {
  return input.replace(/\s+/g, '');
}
