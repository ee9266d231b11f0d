-- Entries and their files. Times are UTC Unix nanoseconds: exact, sub-second,
-- and ordered as numbers, which the List cursor relies on.
CREATE TABLE entries (
    task_id     TEXT    NOT NULL,
    idx         INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    message     TEXT    NOT NULL DEFAULT '',
    received_at INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    -- announced is a JSON array of the statuses whose event is published.
    announced   TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (task_id, idx)
) WITHOUT ROWID;

-- The listing order (newest first) and the status filter.
CREATE INDEX entries_received ON entries (received_at DESC, task_id, idx);
CREATE INDEX entries_status_received ON entries (status, received_at DESC, task_id, idx);

CREATE TABLE files (
    task_id      TEXT    NOT NULL,
    idx          INTEGER NOT NULL,
    pos          INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    bytes        INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    source_url   TEXT    NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    codec        TEXT    NOT NULL DEFAULT '',
    -- is_4k is NULL when unknown (images), else 0 or 1.
    is_4k        INTEGER,
    location     TEXT    NOT NULL,
    PRIMARY KEY (task_id, idx, pos),
    -- Files are served by name, so a name is unique within its entry.
    UNIQUE (task_id, idx, name),
    FOREIGN KEY (task_id, idx) REFERENCES entries (task_id, idx) ON DELETE CASCADE
) WITHOUT ROWID;
