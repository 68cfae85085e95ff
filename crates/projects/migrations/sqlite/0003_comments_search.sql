-- Comments on tasks, and the full-text search index of projects, tasks and comments (SQLite).
--
-- Search: one FTS5 table, `search_fts`, over every project, task and comment. FTS5 needs an
-- integer rowid and our tables are WITHOUT ROWID (UUID keys), so `search_docs` gives each
-- document an integer `doc` and says what it is (kind 0 project, 1 task, 2 comment), its
-- project (for the visibility join) and its task. `search_fts` is an external-content table
-- over the view `search_content` (it stores only the index, not a copy of the text); triggers on
-- insert, update and delete of projects, tasks and comments keep it in step in the same
-- transaction as the change (FTS5 'delete' with the old values, then the new row). Columns:
-- title (project name, task title), labels (a task's labels: the stored JSON array as is, whose
-- quotes and commas the tokenizer drops; a view computing the text with json_each cannot feed
-- FTS5's 'rebuild'), body (description, comment text). unicode61 without diacritic folding, like
-- PostgreSQL's 'simple'.

-- project_id is the task's project, kept in step when a task moves (trigger below).
CREATE TABLE comments (
    id         BLOB PRIMARY KEY NOT NULL,
    task_id    BLOB NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    project_id BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    author_id  BLOB NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- A task's comments, oldest first (ids are UUIDv7), keyset-paginated.
CREATE INDEX comments_by_task ON comments (task_id, id);

CREATE TABLE search_docs (
    doc        INTEGER PRIMARY KEY,
    kind       INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 2),
    id         BLOB NOT NULL UNIQUE,
    project_id BLOB NOT NULL,
    task_id    BLOB
);
CREATE INDEX search_docs_by_task ON search_docs (task_id);

CREATE VIEW search_content (doc, title, labels, body) AS
    SELECT d.doc, p.name, '', p.description FROM search_docs d JOIN projects p ON p.id = d.id WHERE d.kind = 0
    UNION ALL
    SELECT d.doc, t.title, t.labels, t.description
    FROM search_docs d JOIN tasks t ON t.id = d.id WHERE d.kind = 1
    UNION ALL
    SELECT d.doc, '', '', c.body FROM search_docs d JOIN comments c ON c.id = d.id WHERE d.kind = 2;

CREATE VIRTUAL TABLE search_fts USING fts5 (
    title, labels, body,
    content = 'search_content', content_rowid = 'doc', tokenize = 'unicode61 remove_diacritics 0'
);

CREATE TRIGGER projects_search_insert AFTER INSERT ON projects BEGIN
    INSERT INTO search_docs (kind, id, project_id) VALUES (0, new.id, new.id);
    INSERT INTO search_fts (rowid, title, labels, body)
        SELECT doc, new.name, '', new.description FROM search_docs WHERE id = new.id;
END;

CREATE TRIGGER projects_search_update AFTER UPDATE OF name, description ON projects BEGIN
    INSERT INTO search_fts (search_fts, rowid, title, labels, body)
        SELECT 'delete', doc, old.name, '', old.description FROM search_docs WHERE id = old.id;
    INSERT INTO search_fts (rowid, title, labels, body)
        SELECT doc, new.name, '', new.description FROM search_docs WHERE id = new.id;
END;

CREATE TRIGGER projects_search_delete AFTER DELETE ON projects BEGIN
    INSERT INTO search_fts (search_fts, rowid, title, labels, body)
        SELECT 'delete', doc, old.name, '', old.description FROM search_docs WHERE id = old.id;
    DELETE FROM search_docs WHERE id = old.id;
END;

CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO search_docs (kind, id, project_id, task_id) VALUES (1, new.id, new.project_id, new.id);
    INSERT INTO search_fts (rowid, title, labels, body)
        SELECT doc, new.title, new.labels,
               new.description
        FROM search_docs WHERE id = new.id;
END;

CREATE TRIGGER tasks_search_update AFTER UPDATE OF title, description, labels ON tasks BEGIN
    INSERT INTO search_fts (search_fts, rowid, title, labels, body)
        SELECT 'delete', doc, old.title, old.labels,
               old.description
        FROM search_docs WHERE id = old.id;
    INSERT INTO search_fts (rowid, title, labels, body)
        SELECT doc, new.title, new.labels,
               new.description
        FROM search_docs WHERE id = new.id;
END;

-- A task moving to another project takes its comments and their index entries along.
CREATE TRIGGER tasks_move AFTER UPDATE OF project_id ON tasks WHEN old.project_id <> new.project_id BEGIN
    UPDATE comments SET project_id = new.project_id WHERE task_id = new.id;
    UPDATE search_docs SET project_id = new.project_id WHERE task_id = new.id;
END;

CREATE TRIGGER tasks_search_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO search_fts (search_fts, rowid, title, labels, body)
        SELECT 'delete', doc, old.title, old.labels,
               old.description
        FROM search_docs WHERE id = old.id;
    DELETE FROM search_docs WHERE id = old.id;
END;

CREATE TRIGGER comments_search_insert AFTER INSERT ON comments BEGIN
    INSERT INTO search_docs (kind, id, project_id, task_id) VALUES (2, new.id, new.project_id, new.task_id);
    INSERT INTO search_fts (rowid, title, labels, body) SELECT doc, '', '', new.body FROM search_docs WHERE id = new.id;
END;

CREATE TRIGGER comments_search_update AFTER UPDATE OF body ON comments BEGIN
    INSERT INTO search_fts (search_fts, rowid, title, labels, body)
        SELECT 'delete', doc, '', '', old.body FROM search_docs WHERE id = old.id;
    INSERT INTO search_fts (rowid, title, labels, body) SELECT doc, '', '', new.body FROM search_docs WHERE id = new.id;
END;

CREATE TRIGGER comments_search_delete AFTER DELETE ON comments BEGIN
    INSERT INTO search_fts (search_fts, rowid, title, labels, body)
        SELECT 'delete', doc, '', '', old.body FROM search_docs WHERE id = old.id;
    DELETE FROM search_docs WHERE id = old.id;
END;

-- The rows that exist already: a document each, then the index built from the content view.
INSERT INTO search_docs (kind, id, project_id) SELECT 0, id, id FROM projects;
INSERT INTO search_docs (kind, id, project_id, task_id) SELECT 1, id, project_id, id FROM tasks;
INSERT INTO search_fts (search_fts) VALUES ('rebuild');
