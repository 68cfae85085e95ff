-- Files attached to tasks (PostgreSQL). The bytes live in object storage under object_key
-- (attachments/<project_id>/<id>, server-made); filename is the client's, sanitized, metadata
-- only. project_id is the task's, kept to authorize and to find a project's objects.
-- uploaded_by names a user of the users service: no foreign key crosses a service boundary.

CREATE TABLE attachments (
    id           UUID PRIMARY KEY,
    task_id      UUID NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    project_id   UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    uploaded_by  UUID NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL CHECK (size >= 0),
    object_key   TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL
);

-- A task's attachments in creation (id) order.
CREATE INDEX attachments_by_task ON attachments (task_id, id);
-- The GDPR export: what a user uploaded.
CREATE INDEX attachments_by_uploader ON attachments (uploaded_by);
