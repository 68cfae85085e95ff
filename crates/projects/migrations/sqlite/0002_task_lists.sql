-- Task lists: an index per sort of GET /api/projects/{id}/tasks (SQLite), each ending in id, the
-- keyset tiebreaker; read backwards for descending sorts. Sort by position uses tasks_by_column
-- (0001). due_date sorts with missing dates last in both directions, so each direction has its
-- own key: missing dates as '~' (after every date, ascending) or '' (before every date,
-- descending). The label filter reads json_each(labels) of the rows the other conditions leave:
-- SQLite has no index over JSON array elements.
CREATE INDEX tasks_by_priority ON tasks (project_id, priority, id);
CREATE INDEX tasks_by_due_asc ON tasks (project_id, COALESCE(due_date, '~'), id);
CREATE INDEX tasks_by_due_desc ON tasks (project_id, COALESCE(due_date, ''), id);
CREATE INDEX tasks_by_created ON tasks (project_id, created_at, id);
CREATE INDEX tasks_by_updated ON tasks (project_id, updated_at, id);
-- "Assigned to X" within a project.
CREATE INDEX tasks_by_assignee ON tasks (project_id, assignee_id) WHERE assignee_id IS NOT NULL;

-- Times are now written with exactly nine fractional digits ('2026-01-02T03:04:05.123456000Z'),
-- so that text order is time order and the created_at / updated_at indexes sort correctly. Rows
-- written before with as many digits as needed (none, or up to nine) are rewritten alike; a
-- compare-and-set on updated_at then compares like with like.
UPDATE projects SET
    created_at = substr(created_at, 1, 19) || '.' || substr(CASE WHEN substr(created_at, 20, 1) = '.'
        THEN substr(created_at, 21, length(created_at) - 21) ELSE '' END || '000000000', 1, 9) || 'Z',
    updated_at = substr(updated_at, 1, 19) || '.' || substr(CASE WHEN substr(updated_at, 20, 1) = '.'
        THEN substr(updated_at, 21, length(updated_at) - 21) ELSE '' END || '000000000', 1, 9) || 'Z';
UPDATE project_members SET
    created_at = substr(created_at, 1, 19) || '.' || substr(CASE WHEN substr(created_at, 20, 1) = '.'
        THEN substr(created_at, 21, length(created_at) - 21) ELSE '' END || '000000000', 1, 9) || 'Z';
UPDATE tasks SET
    created_at = substr(created_at, 1, 19) || '.' || substr(CASE WHEN substr(created_at, 20, 1) = '.'
        THEN substr(created_at, 21, length(created_at) - 21) ELSE '' END || '000000000', 1, 9) || 'Z',
    updated_at = substr(updated_at, 1, 19) || '.' || substr(CASE WHEN substr(updated_at, 20, 1) = '.'
        THEN substr(updated_at, 21, length(updated_at) - 21) ELSE '' END || '000000000', 1, 9) || 'Z';
