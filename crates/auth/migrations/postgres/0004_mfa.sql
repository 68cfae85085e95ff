-- TOTP second factor: the seed sealed with the key-encryption key (AES-256-GCM), the last
-- accepted time step (each code works once), and whether enrolment was confirmed.
CREATE TABLE auth_totp (
    user_id UUID PRIMARY KEY,
    secret BYTEA NOT NULL,
    enabled_at TIMESTAMPTZ,
    last_step BIGINT,
    created_at TIMESTAMPTZ NOT NULL
);
-- Single-use recovery codes, stored as SHA-256 of the normalized code.
CREATE TABLE auth_recovery_codes (
    user_id UUID NOT NULL,
    code_hash BYTEA NOT NULL,
    used_at TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);
-- A password that was right for an account with 2FA on: the opaque, short-lived, single-purpose
-- mfa_token (stored hashed) that only POST /auth/login/mfa accepts.
CREATE TABLE auth_mfa_challenges (
    token_hash BYTEA PRIMARY KEY,
    user_id UUID NOT NULL,
    user_agent TEXT,
    ip TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used_at TIMESTAMPTZ
);
CREATE INDEX auth_mfa_challenges_expiry ON auth_mfa_challenges (expires_at);
