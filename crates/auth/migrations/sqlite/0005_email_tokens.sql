-- Single-use tokens sent by mail: email verification (24 h) and password reset (1 h). Only the
-- SHA-256 of a token is stored; `used_at` is set once, by compare-and-set, when it is spent (or
-- when a password change or reset makes an outstanding reset token worthless).
CREATE TABLE auth_email_tokens (
    token_hash BLOB PRIMARY KEY,
    user_id BLOB NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX auth_email_tokens_user ON auth_email_tokens (user_id, purpose);
