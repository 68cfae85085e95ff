-- Consecutive failed logins per email key (HMAC of the normalized email, so unknown emails are
-- throttled exactly like known ones and no email is stored).
CREATE TABLE auth_login_failures (
    account_key BYTEA PRIMARY KEY,
    consecutive INTEGER NOT NULL,
    blocked_until TIMESTAMPTZ NOT NULL,
    last_failed_at TIMESTAMPTZ NOT NULL
);
