-- Signing keys of any algorithm: the public JWK replaces the RSA-only n/e columns, and
-- active_from says when a rotated-in key starts signing. SQLite cannot drop NOT NULL columns in
-- place, so the table is rebuilt, keeping every key.
CREATE TABLE auth_signing_keys_v6 (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TEXT NOT NULL,
    active_from TEXT NOT NULL,
    retired_at TEXT
);
INSERT INTO auth_signing_keys_v6 (kid, alg, private_key, public_jwk, created_at, active_from, retired_at)
SELECT kid, alg, private_key,
       json_object('kty', 'RSA', 'kid', kid, 'alg', alg, 'use', 'sig', 'n', n, 'e', e),
       created_at, created_at, retired_at
FROM auth_signing_keys;
DROP TABLE auth_signing_keys;
ALTER TABLE auth_signing_keys_v6 RENAME TO auth_signing_keys;
