-- Single-use tokens sent by mail: email verification (24 h) and password reset (1 h). Only the
-- SHA-256 of a token is stored; `used_at` is set once, by compare-and-set, when it is spent (or
-- when a password change or reset makes an outstanding reset token worthless).
CREATE TABLE auth_email_tokens (
    token_hash BYTEA PRIMARY KEY,
    user_id UUID NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX auth_email_tokens_user ON auth_email_tokens (user_id, purpose, created_at);
