// The password rule Trellis enforces (NIST SP 800-63B-4): 15 to 256 characters,
// counted in Unicode code points, with no composition rules.

export const PASSWORD_MIN = 15;
export const PASSWORD_MAX = 256;

export type PasswordStatus = 'empty' | 'too-short' | 'ok' | 'too-long';

export type PasswordCheck = {
  length: number;
  status: PasswordStatus;
  /** Characters still needed to reach the minimum (0 when long enough). */
  remaining: number;
  /** Characters over the maximum (0 when within it). */
  excess: number;
  ok: boolean;
};

/** Length in Unicode code points, so "🔒" or "é" count as one character each. */
export function passwordLength(password: string): number {
  return [...password].length;
}

export function checkPassword(password: string): PasswordCheck {
  const length = passwordLength(password);
  const status: PasswordStatus =
    length === 0 ? 'empty' : length < PASSWORD_MIN ? 'too-short' : length > PASSWORD_MAX ? 'too-long' : 'ok';
  return {
    length,
    status,
    remaining: Math.max(0, PASSWORD_MIN - length),
    excess: Math.max(0, length - PASSWORD_MAX),
    ok: status === 'ok',
  };
}

/** The hint shown under the password field as the person types. */
export function passwordHint(check: PasswordCheck): string {
  switch (check.status) {
    case 'empty':
      return `Use at least ${PASSWORD_MIN} characters. A few unrelated words make a good password.`;
    case 'too-short':
      return `${check.remaining} more character${check.remaining === 1 ? '' : 's'} needed (${check.length} of ${PASSWORD_MIN}).`;
    case 'too-long':
      return `${check.excess} character${check.excess === 1 ? '' : 's'} too long (at most ${PASSWORD_MAX}).`;
    case 'ok':
      return `Long enough (${check.length} characters).`;
  }
}

/** The error shown when the person submits a password that breaks the rule, or null. */
export function passwordError(check: PasswordCheck): string | null {
  switch (check.status) {
    case 'empty':
      return 'Enter a password.';
    case 'too-short':
      return `Use at least ${PASSWORD_MIN} characters (${check.remaining} more needed).`;
    case 'too-long':
      return `Use at most ${PASSWORD_MAX} characters.`;
    case 'ok':
      return null;
  }
}
