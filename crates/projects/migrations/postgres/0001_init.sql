-- Projects, their members and their tasks (PostgreSQL).
-- owner_id, user_id, assignee_id and created_by name users of the users service: no foreign key
-- crosses a service boundary.

CREATE TABLE projects (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    owner_id    UUID NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE project_members (
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

-- "Projects I am a member of", keyset-paginated by project id (index-only with the role).
CREATE INDEX project_members_by_user ON project_members (user_id, project_id) INCLUDE (role);

-- status: 0 todo, 1 in_progress, 2 done; priority: 0 low, 1 medium, 2 high, 3 urgent.
-- position: a rank (src/rank.rs); COLLATE "C" so that it compares bytewise whatever the
-- database's default collation.
CREATE TABLE tasks (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status      SMALLINT NOT NULL CHECK (status BETWEEN 0 AND 2),
    priority    SMALLINT NOT NULL CHECK (priority BETWEEN 0 AND 3),
    assignee_id UUID,
    due_date    DATE,
    labels      JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(labels) = 'array'),
    position    TEXT COLLATE "C" NOT NULL,
    created_by  UUID NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- A board column in order; also keeps positions unique within a column.
CREATE UNIQUE INDEX tasks_by_column ON tasks (project_id, status, position);
