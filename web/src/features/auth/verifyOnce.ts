// Sends each email-verification token once per page load, however often the page mounts
// (React's StrictMode mounts twice in development; the token is single-use on the server).

const attempts = new Map<string, Promise<void>>();

/** Runs `verify(token)` the first time a token is seen; later calls share that first promise. */
export function verifyOnce(token: string, verify: (token: string) => Promise<void>): Promise<void> {
  let attempt = attempts.get(token);
  if (!attempt) {
    attempt = verify(token);
    attempts.set(token, attempt);
  }
  return attempt;
}

/** Forgets every attempt (tests). */
export function resetVerifyAttempts(): void {
  attempts.clear();
}
