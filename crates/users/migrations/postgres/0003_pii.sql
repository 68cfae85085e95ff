-- Personal data encrypted at rest (ARCHITECTURE.md "Personal data at rest"). The plaintext table
-- is kept aside as users_plaintext; the service encrypts its rows into the new table on start
-- and drops it (users::store::adopt_plaintext), since SQL alone cannot encrypt.
ALTER TABLE users RENAME TO users_plaintext;
ALTER TABLE users_plaintext RENAME CONSTRAINT users_pkey TO users_plaintext_pkey;
ALTER TABLE users_plaintext RENAME CONSTRAINT users_email_key TO users_plaintext_email_key;

CREATE TABLE users (
    id UUID PRIMARY KEY,
    -- HMAC-SHA-256 of the normalized email under the index key; NULL once erased.
    email_index BYTEA UNIQUE,
    -- AES-256-GCM under the user's data key; NULL once erased.
    email BYTEA,
    name BYTEA,
    -- Sealed JSON; NULL means the defaults.
    preferences BYTEA,
    -- The user's data key, wrapped by the key-encryption key of key_version; NULL once erased
    -- (crypto-shredding).
    data_key BYTEA,
    key_version INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user', 'guest')),
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'deleted')),
    email_verified BOOLEAN NOT NULL DEFAULT false,
    mfa_enabled BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    erasure_started_at TIMESTAMPTZ,
    erased_at TIMESTAMPTZ
);

-- The re-encryption job walks the rows of older key versions.
CREATE INDEX users_by_key_version ON users (key_version, id);
-- Erasures to resume after an interruption.
CREATE INDEX users_erasing ON users (id) WHERE erasure_started_at IS NOT NULL AND erased_at IS NULL;

-- Keyed tokens of word prefixes of each user's name and email (pii.rs).
CREATE TABLE user_search_tokens (
    token BYTEA NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (token, user_id)
);
CREATE INDEX user_search_tokens_by_user ON user_search_tokens (user_id);
