-- How the session's sign-in authenticated the user (RFC 8176 `amr` values, space-separated):
-- `pwd` for a password alone, `pwd otp` with a TOTP or recovery code. Each access token of the
-- session, refreshed or not, carries it; admins need `otp` (`auth.admin_requires_mfa`). Sessions
-- from before this column count as password-only.
ALTER TABLE auth_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
