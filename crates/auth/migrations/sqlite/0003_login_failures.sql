-- Consecutive failed logins per email key (HMAC of the normalized email, so unknown emails are
-- throttled exactly like known ones and no email is stored).
CREATE TABLE auth_login_failures (
    account_key BLOB PRIMARY KEY,
    consecutive INTEGER NOT NULL,
    blocked_until TEXT NOT NULL,
    last_failed_at TEXT NOT NULL
);
