-- Comments on tasks, and the full-text search index of projects, tasks and comments (PostgreSQL).
--
-- Search: a generated, stored `tsvector` column per table (so the index changes in the same
-- statement, hence the same transaction, as the text) with a GIN index. Adding the columns
-- computes them for every existing row. The 'simple' configuration (lowercase, no stemming, no
-- stop words) is used rather than 'english': projects are written in any language (users pick
-- their locale), English stemming would mangle the others, and it keeps PostgreSQL's matches the
-- same as SQLite's FTS5 (unicode61, no stemming). Weights: titles A, labels B, text C, so a
-- title match ranks above a match in a description or comment body (`ts_rank_cd`).

-- project_id is the task's project, kept in step when a task moves (trigger below), so that
-- visibility checks and search need no join through tasks.
CREATE TABLE comments (
    id         UUID PRIMARY KEY,
    task_id    UUID NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    author_id  UUID NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    search     TSVECTOR GENERATED ALWAYS AS (setweight(to_tsvector('simple', body), 'C')) STORED
);

-- A task's comments, oldest first (ids are UUIDv7), keyset-paginated.
CREATE INDEX comments_by_task ON comments (task_id, id);
CREATE INDEX comments_search ON comments USING GIN (search);

CREATE FUNCTION comments_follow_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE comments SET project_id = NEW.project_id WHERE task_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_move_comments AFTER UPDATE OF project_id ON tasks
    FOR EACH ROW WHEN (OLD.project_id IS DISTINCT FROM NEW.project_id)
    EXECUTE FUNCTION comments_follow_task();

ALTER TABLE projects ADD COLUMN search TSVECTOR GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', name), 'A') || setweight(to_tsvector('simple', description), 'C')
) STORED;
CREATE INDEX projects_search ON projects USING GIN (search);

ALTER TABLE tasks ADD COLUMN search TSVECTOR GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', title), 'A')
    || setweight(jsonb_to_tsvector('simple', labels, '["string"]'), 'B')
    || setweight(to_tsvector('simple', description), 'C')
) STORED;
CREATE INDEX tasks_search ON tasks USING GIN (search);
