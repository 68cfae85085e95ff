-- TOTP second factor: the seed sealed with the key-encryption key (AES-256-GCM), the last
-- accepted time step (each code works once), and whether enrolment was confirmed.
CREATE TABLE auth_totp (
    user_id BLOB PRIMARY KEY,
    secret BLOB NOT NULL,
    enabled_at TEXT,
    last_step INTEGER,
    created_at TEXT NOT NULL
);
-- Single-use recovery codes, stored as SHA-256 of the normalized code.
CREATE TABLE auth_recovery_codes (
    user_id BLOB NOT NULL,
    code_hash BLOB NOT NULL,
    used_at TEXT,
    PRIMARY KEY (user_id, code_hash)
);
-- A password that was right for an account with 2FA on: the opaque, short-lived, single-purpose
-- mfa_token (stored hashed) that only POST /auth/login/mfa accepts.
CREATE TABLE auth_mfa_challenges (
    token_hash BLOB PRIMARY KEY,
    user_id BLOB NOT NULL,
    user_agent TEXT,
    ip TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used_at TEXT
);
CREATE INDEX auth_mfa_challenges_expiry ON auth_mfa_challenges (expires_at);
