-- Task lists: an index per sort of GET /api/projects/{id}/tasks (PostgreSQL), each ending in id,
-- the keyset tiebreaker; read backwards for descending sorts. Sort by position uses
-- tasks_by_column (0001). due_date sorts with missing dates last in both directions, so each
-- direction has its own key: missing dates as +infinity (ascending) or -infinity (descending).
CREATE INDEX tasks_by_priority ON tasks (project_id, priority, id);
CREATE INDEX tasks_by_due_asc ON tasks (project_id, (COALESCE(due_date, 'infinity'::date)), id);
CREATE INDEX tasks_by_due_desc ON tasks (project_id, (COALESCE(due_date, '-infinity'::date)), id);
CREATE INDEX tasks_by_created ON tasks (project_id, created_at, id);
CREATE INDEX tasks_by_updated ON tasks (project_id, updated_at, id);
-- "Assigned to X" within a project.
CREATE INDEX tasks_by_assignee ON tasks (project_id, assignee_id) WHERE assignee_id IS NOT NULL;
-- The label filter (labels @> '["x"]').
CREATE INDEX tasks_labels ON tasks USING GIN (labels jsonb_path_ops);
