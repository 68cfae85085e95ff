-- Signing keys of any algorithm: the public JWK replaces the RSA-only n/e columns, and
-- active_from says when a rotated-in key starts signing.
ALTER TABLE auth_signing_keys ADD COLUMN public_jwk TEXT, ADD COLUMN active_from TIMESTAMPTZ;
UPDATE auth_signing_keys
SET public_jwk = json_build_object('kty', 'RSA', 'kid', kid, 'alg', alg, 'use', 'sig', 'n', n, 'e', e)::text,
    active_from = created_at;
ALTER TABLE auth_signing_keys
    ALTER COLUMN public_jwk SET NOT NULL,
    ALTER COLUMN active_from SET NOT NULL,
    DROP COLUMN n,
    DROP COLUMN e;
