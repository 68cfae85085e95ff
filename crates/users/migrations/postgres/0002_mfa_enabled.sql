-- Whether the user has a confirmed second factor (the auth service keeps the factor itself).
ALTER TABLE users ADD COLUMN mfa_enabled BOOLEAN NOT NULL DEFAULT FALSE;
