-- Personal data encrypted at rest (ARCHITECTURE.md "Personal data at rest"). The plaintext table
-- is kept aside as users_plaintext; the service encrypts its rows into the new table on start
-- and drops it (users::store::adopt_plaintext), since SQL alone cannot encrypt.
ALTER TABLE users RENAME TO users_plaintext;

CREATE TABLE users (
    id BLOB PRIMARY KEY,
    -- HMAC-SHA-256 of the normalized email under the index key; NULL once erased.
    email_index BLOB UNIQUE,
    -- AES-256-GCM under the user's data key; NULL once erased.
    email BLOB,
    name BLOB,
    -- Sealed JSON; NULL means the defaults.
    preferences BLOB,
    -- The user's data key, wrapped by the key-encryption key of key_version; NULL once erased
    -- (crypto-shredding).
    data_key BLOB,
    key_version INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user', 'guest')),
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'deleted')),
    email_verified INTEGER NOT NULL DEFAULT 0,
    mfa_enabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    erasure_started_at TEXT,
    erased_at TEXT
);

CREATE INDEX users_by_key_version ON users (key_version, id);
CREATE INDEX users_erasing ON users (id) WHERE erasure_started_at IS NOT NULL AND erased_at IS NULL;

CREATE TABLE user_search_tokens (
    token BLOB NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (token, user_id)
) WITHOUT ROWID;
CREATE INDEX user_search_tokens_by_user ON user_search_tokens (user_id);
