// Types for the auth endpoints and the in-memory session.

export type User = {
  id: string;
  email: string;
  name: string;
  role: 'admin' | 'user' | 'guest' | (string & {});
  status?: string;
  email_verified?: boolean;
  mfa_enabled?: boolean;
  created_at?: string;
  updated_at?: string;
};

export type Credentials = { email: string; password: string };
export type RegisterInput = Credentials & { name: string };

export type TokenResponse = {
  access_token: string;
  token_type: string;
  expires_in: number;
  /** Absent in cookie mode (the web app's): the refresh token is in the `__Host-` cookie. */
  refresh_token?: string;
  user: User;
};

export type MfaRequiredResponse = { mfa_required: true; mfa_token: string };

/** What the app keeps about the signed-in person: in memory only, never in storage. */
export type Session = {
  accessToken: string;
  expiresAt: number;
  user: User;
};

export type LoginResult =
  | { kind: 'signed-in'; session: Session }
  | { kind: 'mfa-required'; mfaToken: string };
