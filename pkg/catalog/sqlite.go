package catalog

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver (no cgo: static binaries)
)

// migrations are the schema steps, applied in file-name order; the number of
// applied steps is the database's PRAGMA user_version.
//
//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a statement waits for another connection's (or
// another process's) write lock before failing with SQLITE_BUSY.
const busyTimeout = 30 * time.Second

// SQLite is a Catalog in one SQLite file. It is safe for concurrent use by
// several goroutines and by several processes on one host opening the same
// file: every write transaction starts with BEGIN IMMEDIATE, so concurrent
// read-modify-writes queue on SQLite's write lock (up to busyTimeout) instead
// of deadlocking on a lock upgrade, and reads see a consistent WAL snapshot.
type SQLite struct {
	db   *sql.DB
	path string
	// writer admits one Update of this handle at a time: writers of one
	// process queue here (FIFO-ish, cancellable) rather than poll SQLite's
	// busy handler; other processes still queue on the file's write lock.
	writer chan struct{}
}

// OpenSQLite opens (creating if needed) the SQLite catalog at path and brings
// its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("opening sqlite catalog: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite catalog %q: %w", path, err)
	}
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "1")
	q.Set("_synchronous", "NORMAL") // durable in WAL mode up to the last checkpointed commit
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("opening sqlite catalog %q: %w", abs, err)
	}
	// Keep connections open between bursts: each new one re-runs the pragmas.
	db.SetMaxIdleConns(8)
	s := &SQLite{db: db, path: abs, writer: make(chan struct{}, 1)}
	if err := s.migrateRetrying(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening sqlite catalog %q: %w", abs, err)
	}
	return s, nil
}

// Path is the absolute path of the database file.
func (s *SQLite) Path() string { return s.path }

// migrateRetrying runs migrate, trying again while another process holds
// the database: processes that create a new file at the same moment can get
// SQLITE_BUSY while the first one sets up WAL mode, before the busy timeout
// applies.
func (s *SQLite) migrateRetrying(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		err := s.migrate(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (while waiting: %w)", err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED (any
// extended code).
func isBusy(err error) bool {
	var coded interface{ Code() int }
	if !errors.As(err, &coded) {
		return false
	}
	switch coded.Code() & 0xff {
	case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
		return true
	}
	return false
}

// migrate applies the embedded migrations not yet applied, all in one
// BEGIN IMMEDIATE transaction, so that processes opening a new file at the
// same time apply them exactly once.
func (s *SQLite) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("listing migrations: %w", err)
	}
	slices.Sort(names)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("starting migration: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if version > len(names) {
		return fmt.Errorf("schema version %d is newer than this program's %d", version, len(names))
	}
	for i := version; i < len(names); i++ {
		b, err := migrations.ReadFile(names[i])
		if err != nil {
			return fmt.Errorf("reading migration %s: %w", names[i], err)
		}
		if _, err := tx.ExecContext(ctx, string(b)); err != nil {
			return fmt.Errorf("applying migration %s: %w", names[i], err)
		}
	}
	if version == len(names) {
		return nil
	}
	// PRAGMA takes no bound parameters; the value is an int we computed.
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(len(names))); err != nil {
		return fmt.Errorf("setting schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing migration: %w", err)
	}
	return nil
}

// entryColumns and fileColumns are selected, in this order, by every read; see scanRows.
const (
	entryColumns = `e.task_id, e.idx, e.status, e.message, e.received_at, e.updated_at, e.attempts, e.announced`
	fileColumns  = `f.kind, f.name, f.bytes, f.sha256, f.content_type, f.source_url, f.width, f.height,
	f.duration_ms, f.codec, f.is_4k, f.location`
)

// Get returns one entry, or ErrNotFound.
func (s *SQLite) Get(ctx context.Context, k Key) (Entry, error) {
	// One statement reads the entry and its files: one consistent snapshot.
	rows, err := s.db.QueryContext(ctx, `SELECT `+entryColumns+`, `+fileColumns+`
		FROM entries e LEFT JOIN files f ON f.task_id = e.task_id AND f.idx = e.idx
		WHERE e.task_id = ? AND e.idx = ?
		ORDER BY f.pos`, k.TaskID, k.Index)
	if err != nil {
		return Entry{}, fmt.Errorf("reading entry %s/%d: %w", k.TaskID, k.Index, err)
	}
	entries, err := scanRows(rows)
	if err != nil {
		return Entry{}, fmt.Errorf("reading entry %s/%d: %w", k.TaskID, k.Index, err)
	}
	if len(entries) == 0 {
		return Entry{}, ErrNotFound
	}
	return entries[0], nil
}

// List returns a page of entries, newest first by (ReceivedAt desc, TaskID, Index).
func (s *SQLite) List(ctx context.Context, q ListQuery) (Page, error) {
	if q.Status != "" && !q.Status.Valid() {
		return Page{}, fmt.Errorf("listing entries: unknown status %q", q.Status)
	}
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	var (
		where []string
		args  []any
	)
	if q.Status != "" {
		where = append(where, "status = ?")
		args = append(args, string(q.Status))
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return Page{}, err
		}
		where = append(where, `(received_at < ? OR (received_at = ? AND (task_id > ? OR (task_id = ? AND idx > ?))))`)
		args = append(args, c.ReceivedAt, c.ReceivedAt, c.TaskID, c.TaskID, c.Index)
	}
	cond := ""
	if len(where) > 0 {
		cond = "WHERE " + strings.Join(where, " AND ")
	}
	// One more row than asked tells whether another page follows.
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, `SELECT `+entryColumns+`, `+fileColumns+`
		FROM (SELECT * FROM entries `+cond+` ORDER BY received_at DESC, task_id, idx LIMIT ?) e
		LEFT JOIN files f ON f.task_id = e.task_id AND f.idx = e.idx
		ORDER BY e.received_at DESC, e.task_id, e.idx, f.pos`, args...)
	if err != nil {
		return Page{}, fmt.Errorf("listing entries: %w", err)
	}
	entries, err := scanRows(rows)
	if err != nil {
		return Page{}, fmt.Errorf("listing entries: %w", err)
	}
	p := Page{Items: entries}
	if len(entries) > limit {
		p.Items = entries[:limit]
		last := p.Items[limit-1]
		p.NextCursor = encodeCursor(cursor{ReceivedAt: last.ReceivedAt.UnixNano(), TaskID: last.TaskID, Index: last.Index})
	}
	if p.Items == nil {
		p.Items = []Entry{}
	}
	return p, nil
}

// Update reads the entry (a new Pending entry when absent), calls fn and
// stores what fn left, in one BEGIN IMMEDIATE transaction.
func (s *SQLite) Update(ctx context.Context, k Key, fn func(e *Entry) error) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	select {
	case s.writer <- struct{}{}:
		defer func() { <-s.writer }()
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Entry{}, fmt.Errorf("updating entry %s/%d: starting transaction: %w", k.TaskID, k.Index, err)
	}
	defer func() { _ = tx.Rollback() }()

	rows, err := tx.QueryContext(ctx, `SELECT `+entryColumns+`, `+fileColumns+`
		FROM entries e LEFT JOIN files f ON f.task_id = e.task_id AND f.idx = e.idx
		WHERE e.task_id = ? AND e.idx = ?
		ORDER BY f.pos`, k.TaskID, k.Index)
	if err != nil {
		return Entry{}, fmt.Errorf("updating entry %s/%d: reading: %w", k.TaskID, k.Index, err)
	}
	entries, err := scanRows(rows)
	if err != nil {
		return Entry{}, fmt.Errorf("updating entry %s/%d: reading: %w", k.TaskID, k.Index, err)
	}
	now := time.Now().UTC()
	var e Entry
	if len(entries) == 1 {
		e = entries[0]
	} else {
		e = Entry{TaskID: k.TaskID, Index: k.Index, Status: Pending, ReceivedAt: now}
	}
	if err := fn(&e); err != nil {
		return Entry{}, err
	}
	// The key is not fn's to change; ReceivedAt only on creation, and only
	// to an earlier time (when the callback was received).
	e.TaskID, e.Index = k.TaskID, k.Index
	if len(entries) == 1 {
		e.ReceivedAt = entries[0].ReceivedAt
	} else if e.ReceivedAt.IsZero() || e.ReceivedAt.After(now) {
		e.ReceivedAt = now
	} else {
		e.ReceivedAt = e.ReceivedAt.UTC()
	}
	if !e.Status.Valid() {
		return Entry{}, fmt.Errorf("updating entry %s/%d: invalid status %q", k.TaskID, k.Index, e.Status)
	}
	e.UpdatedAt = now
	announced, err := json.Marshal(nonNil(e.Announced))
	if err != nil {
		return Entry{}, fmt.Errorf("updating entry %s/%d: encoding announced: %w", k.TaskID, k.Index, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO entries
		(task_id, idx, status, message, received_at, updated_at, attempts, announced)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (task_id, idx) DO UPDATE SET
			status = excluded.status, message = excluded.message, updated_at = excluded.updated_at,
			attempts = excluded.attempts, announced = excluded.announced`,
		e.TaskID, e.Index, string(e.Status), e.Message, e.ReceivedAt.UnixNano(), e.UpdatedAt.UnixNano(),
		e.Attempts, string(announced)); err != nil {
		return Entry{}, fmt.Errorf("updating entry %s/%d: writing: %w", k.TaskID, k.Index, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM files WHERE task_id = ? AND idx = ?`, e.TaskID, e.Index); err != nil {
		return Entry{}, fmt.Errorf("updating entry %s/%d: replacing files: %w", k.TaskID, k.Index, err)
	}
	for i, f := range e.Files {
		var is4K sql.NullBool
		if f.Is4K != nil {
			is4K = sql.NullBool{Bool: *f.Is4K, Valid: true}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO files
			(task_id, idx, pos, kind, name, bytes, sha256, content_type, source_url, width, height,
			 duration_ms, codec, is_4k, location)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.TaskID, e.Index, i, string(f.Kind), f.Name, f.Bytes, f.SHA256, f.ContentType, f.SourceURL,
			f.Width, f.Height, f.DurationMS, f.Codec, is4K, f.Location); err != nil {
			return Entry{}, fmt.Errorf("updating entry %s/%d: writing file %q: %w", k.TaskID, k.Index, f.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Entry{}, fmt.Errorf("updating entry %s/%d: committing: %w", k.TaskID, k.Index, err)
	}
	// Return what Get would return now.
	if e.Files == nil {
		e.Files = []File{}
	}
	if len(e.Announced) == 0 {
		e.Announced = nil
	}
	return e, nil
}

// Ping checks that the database answers.
func (s *SQLite) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("pinging sqlite catalog: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *SQLite) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing sqlite catalog: %w", err)
	}
	return nil
}

// scanRows reads rows of entryColumns and fileColumns (files of one entry
// adjacent, entries in query order) into entries, and closes rows.
func scanRows(rows *sql.Rows) ([]Entry, error) {
	defer func() { _ = rows.Close() }()
	var out []Entry
	for rows.Next() {
		var (
			e                     Entry
			status, announced     string
			receivedAt, updatedAt int64
			kind, name, sha, ct   sql.NullString
			src, codec, location  sql.NullString
			bytes, dur            sql.NullInt64
			width, height         sql.NullInt64
			is4K                  sql.NullBool
		)
		if err := rows.Scan(&e.TaskID, &e.Index, &status, &e.Message, &receivedAt, &updatedAt,
			&e.Attempts, &announced,
			&kind, &name, &bytes, &sha, &ct, &src, &width, &height, &dur, &codec, &is4K, &location); err != nil {
			return nil, fmt.Errorf("scanning: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].TaskID != e.TaskID || out[n-1].Index != e.Index {
			e.Status = Status(status)
			e.ReceivedAt = time.Unix(0, receivedAt).UTC()
			e.UpdatedAt = time.Unix(0, updatedAt).UTC()
			if err := json.Unmarshal([]byte(announced), &e.Announced); err != nil {
				return nil, fmt.Errorf("decoding announced of %s/%d: %w", e.TaskID, e.Index, err)
			}
			if len(e.Announced) == 0 {
				e.Announced = nil
			}
			e.Files = []File{}
			out = append(out, e)
		}
		if !name.Valid { // LEFT JOIN: an entry without files
			continue
		}
		f := File{
			Kind: Kind(kind.String), Name: name.String, Bytes: bytes.Int64, SHA256: sha.String,
			ContentType: ct.String, SourceURL: src.String, Width: int(width.Int64), Height: int(height.Int64),
			DurationMS: dur.Int64, Codec: codec.String, Location: location.String,
		}
		if is4K.Valid {
			f.Is4K = &is4K.Bool
		}
		last := &out[len(out)-1]
		last.Files = append(last.Files, f)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func nonNil(s []Status) []Status {
	if s == nil {
		return []Status{}
	}
	return s
}
