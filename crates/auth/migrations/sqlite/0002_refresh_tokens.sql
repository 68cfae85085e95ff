-- Every refresh token ever issued for a session, so that reuse of a rotated one is recognised.
-- auth_sessions.refresh_hash keeps the family's first token.
CREATE TABLE auth_refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    session_id BLOB NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    issued_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX auth_refresh_tokens_session ON auth_refresh_tokens (session_id);
INSERT INTO auth_refresh_tokens (token_hash, session_id, issued_at)
    SELECT refresh_hash, id, created_at FROM auth_sessions;
