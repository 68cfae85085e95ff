-- Email changes take effect only once the new address is verified (docs/SECURITY.md, issue 16):
-- two more purposes of mailed tokens, `change_email` (mailed to the new address; applies the
-- change) and `undo_email_change` (mailed to the old address afterwards; restores it and ends
-- every session), each carrying the address it sets, sealed with the key-encryption key
-- (AES-256-GCM, bound to the user and purpose). SQLite cannot alter a CHECK, so the table is
-- rebuilt with its rows.
CREATE TABLE auth_email_tokens_v7 (
    token_hash BLOB PRIMARY KEY,
    user_id BLOB NOT NULL,
    purpose TEXT NOT NULL
        CHECK (purpose IN ('verify_email', 'reset_password', 'change_email', 'undo_email_change')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    email BLOB
);
INSERT INTO auth_email_tokens_v7 (token_hash, user_id, purpose, created_at, expires_at, used_at)
    SELECT token_hash, user_id, purpose, created_at, expires_at, used_at FROM auth_email_tokens;
DROP TABLE auth_email_tokens;
ALTER TABLE auth_email_tokens_v7 RENAME TO auth_email_tokens;
CREATE INDEX auth_email_tokens_user ON auth_email_tokens (user_id, purpose);
