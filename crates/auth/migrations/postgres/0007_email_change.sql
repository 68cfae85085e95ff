-- Email changes take effect only once the new address is verified (docs/SECURITY.md, issue 16):
-- two more purposes of mailed tokens, `change_email` (mailed to the new address; applies the
-- change) and `undo_email_change` (mailed to the old address afterwards; restores it and ends
-- every session), each carrying the address it sets, sealed with the key-encryption key
-- (AES-256-GCM, bound to the user and purpose).
ALTER TABLE auth_email_tokens DROP CONSTRAINT IF EXISTS auth_email_tokens_purpose_check;
ALTER TABLE auth_email_tokens ADD CONSTRAINT auth_email_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'reset_password', 'change_email', 'undo_email_change'));
ALTER TABLE auth_email_tokens ADD COLUMN email BYTEA;
