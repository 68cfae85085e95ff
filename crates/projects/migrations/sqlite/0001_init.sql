-- Projects, their members and their tasks (SQLite).
-- UUIDs are 16-byte BLOBs (UUIDv7: byte order is creation order); times are RFC 3339 UTC TEXT.
-- owner_id, user_id, assignee_id and created_by name users of the users service: no foreign key
-- crosses a service boundary.

CREATE TABLE projects (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    owner_id    BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE project_members (
    project_id BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    BLOB NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, user_id)
) WITHOUT ROWID;

-- "Projects I am a member of", keyset-paginated by project id.
CREATE INDEX project_members_by_user ON project_members (user_id, project_id, role);

-- status: 0 todo, 1 in_progress, 2 done; priority: 0 low, 1 medium, 2 high, 3 urgent.
-- position: a rank (src/rank.rs), compared bytewise (SQLite's default BINARY collation).
CREATE TABLE tasks (
    id          BLOB PRIMARY KEY NOT NULL,
    project_id  BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status      INTEGER NOT NULL CHECK (status BETWEEN 0 AND 2),
    priority    INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),
    assignee_id BLOB,
    due_date    TEXT CHECK (due_date IS NULL OR date(due_date) = due_date),
    labels      TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(labels) AND json_type(labels) = 'array'),
    position    TEXT NOT NULL,
    created_by  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) WITHOUT ROWID;

-- A board column in order; also keeps positions unique within a column.
CREATE UNIQUE INDEX tasks_by_column ON tasks (project_id, status, position);
