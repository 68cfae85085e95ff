CREATE TABLE auth_credentials (
    user_id BLOB PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE auth_sessions (
    id BLOB PRIMARY KEY,
    user_id BLOB NOT NULL,
    refresh_hash BLOB NOT NULL UNIQUE,
    user_agent TEXT,
    ip TEXT,
    created_at TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);
CREATE TABLE auth_signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_key BLOB NOT NULL,
    n TEXT NOT NULL,
    e TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT
);
