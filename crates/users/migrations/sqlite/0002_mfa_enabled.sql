-- Whether the user has a confirmed second factor (the auth service keeps the factor itself).
ALTER TABLE users ADD COLUMN mfa_enabled INTEGER NOT NULL DEFAULT 0;
