-- Files attached to tasks (SQLite). The bytes live in object storage under object_key
-- (attachments/<project_id>/<id>, server-made); filename is the client's, sanitized, metadata
-- only. project_id is the task's, kept to authorize and to find a project's objects.
-- uploaded_by names a user of the users service: no foreign key crosses a service boundary.

CREATE TABLE attachments (
    id           BLOB PRIMARY KEY NOT NULL,
    task_id      BLOB NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    project_id   BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    uploaded_by  BLOB NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    object_key   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL
) WITHOUT ROWID;

-- A task's attachments in creation (id) order.
CREATE INDEX attachments_by_task ON attachments (task_id, id);
-- The GDPR export: what a user uploaded.
CREATE INDEX attachments_by_uploader ON attachments (uploaded_by);
