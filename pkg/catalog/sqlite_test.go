package catalog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veo4k/veo4k/pkg/catalog"
	"github.com/veo4k/veo4k/pkg/catalog/catalogtest"
)

func openSQLite(t *testing.T, path string) *catalog.SQLite {
	t.Helper()
	c, err := catalog.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func TestSQLiteConformance(t *testing.T) {
	t.Parallel()
	catalogtest.Run(t, func(t *testing.T) catalog.Catalog {
		return openSQLite(t, filepath.Join(t.TempDir(), "catalog.db"))
	})
}

// TestSQLiteTwoHandles opens the same file twice, as two fetcher processes
// would, and has both increment one entry concurrently: no update may be lost
// and none may fail with a lock error.
func TestSQLiteTwoHandles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shared.db")
	a := openSQLite(t, path)
	b := openSQLite(t, path)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	const perHandle = 25
	keys := []catalog.Key{{TaskID: "shared", Index: 0}, {TaskID: "shared", Index: 1}}
	var wg sync.WaitGroup
	errs := make(chan error, 2*perHandle*len(keys))
	for _, c := range []*catalog.SQLite{a, b} {
		for i := range perHandle {
			for _, k := range keys {
				wg.Go(func() {
					_, err := c.Update(ctx, k, func(e *catalog.Entry) error {
						e.Attempts++
						if i == perHandle-1 {
							e.Announce(catalog.Failed)
						}
						return nil
					})
					errs <- err
				})
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update: %v", err)
		}
	}
	for _, k := range keys {
		for name, c := range map[string]*catalog.SQLite{"a": a, "b": b} {
			e, err := c.Get(ctx, k)
			if err != nil {
				t.Fatalf("%s.Get(%v): %v", name, k, err)
			}
			if got, want := e.Attempts, 2*perHandle; got != want {
				t.Errorf("%s sees attempts %d for %v, want %d", name, got, k, want)
			}
			if !e.IsAnnounced(catalog.Failed) {
				t.Errorf("%s: announced %v lacks failed", name, e.Announced)
			}
		}
	}
}

// TestSQLiteReopen checks that data survives closing, and that opening an
// up-to-date file again applies no migration twice.
func TestSQLiteReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "reopen.db")
	c, err := catalog.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	k := catalog.Key{TaskID: "persisted", Index: 3}
	want, err := c.Update(t.Context(), k, func(e *catalog.Entry) error {
		e.To(catalog.Failed, "retries exhausted")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2 := openSQLite(t, path)
	got, err := c2.Get(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != want.Status || got.Message != want.Message || !got.ReceivedAt.Equal(want.ReceivedAt) {
		t.Errorf("after reopen got %+v, want %+v", got, want)
	}
	if err := c2.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestOpenDSN(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		dsn     string
		wantErr string
	}{
		{"scheme absolute", "sqlite://" + filepath.Join(dir, "a.db"), ""},
		{"sqlite3 scheme", "sqlite3://" + filepath.Join(dir, "b.db"), ""},
		{"plain path", filepath.Join(dir, "c.db"), ""},
		{"scheme without slashes", "sqlite:" + filepath.Join(dir, "d.db"), ""},
		{"empty", "", "empty DSN"},
		{"no file", "sqlite://", "names no file"},
		{"postgres", "postgres://user:secret@db/veo4k", "not supported yet"},
		{"unknown", "mysql://x/y", "unknown DSN scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := catalog.Open(t.Context(), tt.dsn)
			if tt.wantErr != "" {
				if err == nil {
					_ = c.Close()
					t.Fatalf("Open(%q) succeeded, want error containing %q", tt.dsn, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Open(%q) error = %v, want it to contain %q", tt.dsn, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q leaks the DSN's password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.dsn, err)
			}
			defer func() { _ = c.Close() }()
			if err := c.Ping(t.Context()); err != nil {
				t.Errorf("Ping: %v", err)
			}
			k := catalog.Key{TaskID: "dsn", Index: 0}
			if _, err := c.Update(t.Context(), k, func(*catalog.Entry) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(t.Context(), k); err != nil {
				t.Errorf("Get: %v", err)
			}
			s, ok := c.(*catalog.SQLite)
			if !ok {
				t.Fatalf("Open(%q) gave a %T, want *catalog.SQLite", tt.dsn, c)
			}
			if !strings.HasPrefix(s.Path(), dir+string(filepath.Separator)) {
				t.Errorf("database at %q, want under %q", s.Path(), dir)
			}
		})
	}
}

func TestOpenSQLiteMissingDir(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing", "dir", "x.db")
	c, err := catalog.OpenSQLite(t.Context(), path)
	if err == nil {
		_ = c.Close()
		t.Fatal("OpenSQLite in a missing directory succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file %q", err, path)
	}
}

// TestOpenSQLiteOddPath checks that characters special in URIs (space, #, ?,
// %) reach the file system unchanged instead of being read as DSN syntax.
func TestOpenSQLiteOddPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a b#c?d%20e")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cat alog.db")
	c := openSQLite(t, path)
	if got, want := c.Path(), path; got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}
	if _, err := c.Update(t.Context(), catalog.Key{TaskID: "odd", Index: 0}, func(*catalog.Entry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %q: %v", path, err)
	}
}

// TestSQLiteCancelWhileLocked checks that an Update waiting for another
// process's write lock gives up when its context ends, long before the busy
// timeout, and that the lock holder's work is unaffected.
func TestSQLiteCancelWhileLocked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "locked.db")
	a := openSQLite(t, path)
	b := openSQLite(t, path)
	k := catalog.Key{TaskID: "locked", Index: 0}

	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := a.Update(t.Context(), k, func(e *catalog.Entry) error {
			close(holding)
			<-release
			e.Attempts = 1
			return nil
		})
		done <- err
	}()
	<-holding

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Update(ctx, k, func(e *catalog.Entry) error {
		t.Error("fn ran while another handle held the write lock")
		return nil
	})
	elapsed := time.Since(start)
	close(release)
	if err == nil {
		t.Fatal("Update succeeded while the other handle held the write lock")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want context.DeadlineExceeded", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("Update gave up after %v, want about the context's 200ms", elapsed)
	}
	if err := <-done; err != nil {
		t.Fatalf("lock holder's Update: %v", err)
	}
	e, err := b.Get(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.Attempts, 1; got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
}

// TestSQLiteConcurrentOpen opens one new file from several handles at once,
// as replicas starting together would: the schema is created exactly once
// and every handle works.
func TestSQLiteConcurrentOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "new.db")
	const n = 4
	handles := make([]*catalog.SQLite, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			handles[i], errs[i] = catalog.OpenSQLite(t.Context(), path)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("handle %d: %v", i, err)
		}
		t.Cleanup(func() { _ = handles[i].Close() })
	}
	for i, c := range handles {
		k := catalog.Key{TaskID: "opened", Index: i}
		if _, err := c.Update(t.Context(), k, func(*catalog.Entry) error { return nil }); err != nil {
			t.Errorf("handle %d Update: %v", i, err)
		}
	}
	p, err := handles[0].List(t.Context(), catalog.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(p.Items), n; got != want {
		t.Errorf("entries = %d, want %d", got, want)
	}
}
