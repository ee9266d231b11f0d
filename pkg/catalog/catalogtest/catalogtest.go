// Package catalogtest is the conformance suite every catalog.Catalog backend
// must pass (SQLite today, Postgres later), so that the fetcher and the API
// can rely on the same behaviour whatever stores the entries.
package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/veo4k/veo4k/pkg/catalog"
)

// Run runs the suite. open must return a new, empty catalog on each call
// and close it in a t.Cleanup of its own. The subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) catalog.Catalog) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, c catalog.Catalog)
	}{
		{"CreateOnUpdate", testCreateOnUpdate},
		{"GetNotFound", testGetNotFound},
		{"StatusRules", testStatusRules},
		{"FilesRoundTrip", testFilesRoundTrip},
		{"AnnouncedRoundTrip", testAnnouncedRoundTrip},
		{"FnErrorAborts", testFnErrorAborts},
		{"ListPagination", testListPagination},
		{"ListFilter", testListFilter},
		{"ListDefaultLimit", testListDefaultLimit},
		{"BadCursor", testBadCursor},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ContextCancelled", testContextCancelled},
		{"ContextEndsWhileWaiting", testContextEndsWhileWaiting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustUpdate(t *testing.T, c catalog.Catalog, k catalog.Key, fn func(e *catalog.Entry) error) catalog.Entry {
	t.Helper()
	e, err := c.Update(ctx(t), k, fn)
	if err != nil {
		t.Fatalf("Update(%v): %v", k, err)
	}
	return e
}

func mustGet(t *testing.T, c catalog.Catalog, k catalog.Key) catalog.Entry {
	t.Helper()
	e, err := c.Get(ctx(t), k)
	if err != nil {
		t.Fatalf("Get(%v): %v", k, err)
	}
	return e
}

func noop(*catalog.Entry) error { return nil }

func testCreateOnUpdate(t *testing.T, c catalog.Catalog) {
	k := catalog.Key{TaskID: "task_create", Index: 2}
	before := time.Now()
	got := mustUpdate(t, c, k, func(e *catalog.Entry) error {
		if e.Status != catalog.Pending {
			return fmt.Errorf("new entry has status %q, want pending", e.Status)
		}
		if e.ReceivedAt.IsZero() {
			return errors.New("new entry has no ReceivedAt")
		}
		e.Message = "hello"
		return nil
	})
	after := time.Now()
	if got.TaskID != k.TaskID || got.Index != k.Index {
		t.Errorf("key = %v, want %v", got.Key(), k)
	}
	if got, want := got.Status, catalog.Pending; got != want {
		t.Errorf("status = %q, want %q", got, want)
	}
	if got.ReceivedAt.Before(before.Add(-time.Second)) || got.ReceivedAt.After(after.Add(time.Second)) {
		t.Errorf("ReceivedAt = %v, want between %v and %v", got.ReceivedAt, before, after)
	}
	if got.UpdatedAt.IsZero() || got.UpdatedAt.Before(got.ReceivedAt) {
		t.Errorf("UpdatedAt = %v, want set and not before ReceivedAt %v", got.UpdatedAt, got.ReceivedAt)
	}
	if loc := got.ReceivedAt.Location(); loc != time.UTC {
		t.Errorf("ReceivedAt location = %v, want UTC", loc)
	}

	stored := mustGet(t, c, k)
	if got, want := stored.Message, "hello"; got != want {
		t.Errorf("stored message = %q, want %q", got, want)
	}
	if !stored.ReceivedAt.Equal(got.ReceivedAt) || !stored.UpdatedAt.Equal(got.UpdatedAt) {
		t.Errorf("stored times (%v, %v) differ from returned (%v, %v): sub-second precision lost?",
			stored.ReceivedAt, stored.UpdatedAt, got.ReceivedAt, got.UpdatedAt)
	}

	// A new entry may take an earlier ReceivedAt (its callback's), never a later one.
	early := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	if got := mustUpdate(t, c, catalog.Key{TaskID: "early"}, func(e *catalog.Entry) error {
		e.ReceivedAt = early
		return nil
	}); !got.ReceivedAt.Equal(early) {
		t.Errorf("new entry ReceivedAt = %v, want the earlier %v fn set", got.ReceivedAt, early)
	}
	if got := mustUpdate(t, c, catalog.Key{TaskID: "late"}, func(e *catalog.Entry) error {
		e.ReceivedAt = time.Now().Add(time.Hour)
		return nil
	}); got.ReceivedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("new entry ReceivedAt = %v: a time in the future was accepted", got.ReceivedAt)
	}

	// A second Update keeps ReceivedAt and moves UpdatedAt forward.
	again := mustUpdate(t, c, k, func(e *catalog.Entry) error {
		e.ReceivedAt = time.Unix(1, 0) // not fn's to change
		return nil
	})
	if !again.ReceivedAt.Equal(stored.ReceivedAt) {
		t.Errorf("ReceivedAt changed from %v to %v", stored.ReceivedAt, again.ReceivedAt)
	}
	if again.UpdatedAt.Before(stored.UpdatedAt) {
		t.Errorf("UpdatedAt went back from %v to %v", stored.UpdatedAt, again.UpdatedAt)
	}
	if got := mustGet(t, c, k); !got.ReceivedAt.Equal(stored.ReceivedAt) {
		t.Errorf("stored ReceivedAt changed from %v to %v", stored.ReceivedAt, got.ReceivedAt)
	}
}

func testGetNotFound(t *testing.T, c catalog.Catalog) {
	mustUpdate(t, c, catalog.Key{TaskID: "present", Index: 0}, noop)
	for _, k := range []catalog.Key{{TaskID: "absent", Index: 0}, {TaskID: "present", Index: 1}} {
		if _, err := c.Get(ctx(t), k); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("Get(%v) error = %v, want ErrNotFound", k, err)
		}
	}
}

func testStatusRules(t *testing.T, c catalog.Catalog) {
	k := catalog.Key{TaskID: "task_rules", Index: 0}
	steps := []struct {
		to          catalog.Status
		msg         string
		wantChanged bool
		wantStatus  catalog.Status
		wantMessage string
	}{
		{catalog.Downloading, "", true, catalog.Downloading, ""},
		{catalog.Failed, "expired URL", true, catalog.Failed, "expired URL"},
		{catalog.Failed, "expired URL", false, catalog.Failed, "expired URL"},
		{catalog.Unavailable, "4K unavailable", true, catalog.Unavailable, "4K unavailable"},
		{catalog.Ready, "", true, catalog.Ready, ""}, // success after failure upgrades
		{catalog.Failed, "late failure", false, catalog.Ready, ""},
		{catalog.Unavailable, "late", false, catalog.Ready, ""},
		{catalog.Downloading, "", false, catalog.Ready, ""},
	}
	for i, s := range steps {
		var changed bool
		mustUpdate(t, c, k, func(e *catalog.Entry) error {
			changed = e.To(s.to, s.msg)
			return nil
		})
		if changed != s.wantChanged {
			t.Errorf("step %d: To(%q) changed = %v, want %v", i, s.to, changed, s.wantChanged)
		}
		got := mustGet(t, c, k)
		if got.Status != s.wantStatus || got.Message != s.wantMessage {
			t.Errorf("step %d: stored (%q, %q), want (%q, %q)", i, got.Status, got.Message, s.wantStatus, s.wantMessage)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func testFilesRoundTrip(t *testing.T, c catalog.Catalog) {
	k := catalog.Key{TaskID: "task_files", Index: 1}
	files := []catalog.File{
		{
			Kind: catalog.Video, Name: "video.mp4", Bytes: 5_000_000_000, SHA256: "ab12",
			ContentType: "video/mp4", SourceURL: "https://file.aiquickdraw.com/v/x.mp4",
			Width: 3840, Height: 2160, DurationMS: 8000, Codec: "avc1", Is4K: ptr(true),
			Location: "files/task_files/1/video.mp4",
		},
		{
			Kind: catalog.Video, Name: "small.mp4", Bytes: 10, SHA256: "cd34", ContentType: "video/mp4",
			SourceURL: "https://file.aiquickdraw.com/v/y.mp4", Width: 1280, Height: 720, DurationMS: 1,
			Codec: "hvc1", Is4K: ptr(false), Location: "files/task_files/1/small.mp4",
		},
		{
			Kind: catalog.Image, Name: "image.jpg", Bytes: 1234, SHA256: "ef56", ContentType: "image/jpeg",
			SourceURL: "https://file.aiquickdraw.com/v/x.jpg", Width: 640, Height: 360,
			Location: "files/task_files/1/image.jpg",
		},
	}
	mustUpdate(t, c, k, func(e *catalog.Entry) error {
		e.Files = slices.Clone(files)
		e.To(catalog.Ready, "")
		return nil
	})
	got := mustGet(t, c, k)
	if !reflect.DeepEqual(got.Files, files) {
		t.Errorf("files = %+v\nwant %+v", got.Files, files)
	}
	if got.Files[2].Is4K != nil {
		t.Errorf("image Is4K = %v, want nil", *got.Files[2].Is4K)
	}

	// Replacing the files replaces them all.
	mustUpdate(t, c, k, func(e *catalog.Entry) error {
		e.Files = files[2:]
		return nil
	})
	if got := mustGet(t, c, k); !reflect.DeepEqual(got.Files, files[2:]) {
		t.Errorf("after replace files = %+v, want %+v", got.Files, files[2:])
	}
}

func testAnnouncedRoundTrip(t *testing.T, c catalog.Catalog) {
	k := catalog.Key{TaskID: "task_announced", Index: 0}
	if got := mustUpdate(t, c, k, noop); len(got.Announced) != 0 {
		t.Fatalf("new entry announced = %v, want none", got.Announced)
	}
	mustUpdate(t, c, k, func(e *catalog.Entry) error {
		e.Announce(catalog.Failed)
		e.Announce(catalog.Ready)
		e.Announce(catalog.Failed)
		return nil
	})
	got := mustGet(t, c, k)
	if want := []catalog.Status{catalog.Failed, catalog.Ready}; !slices.Equal(got.Announced, want) {
		t.Errorf("announced = %v, want %v", got.Announced, want)
	}
	if !got.IsAnnounced(catalog.Ready) || got.IsAnnounced(catalog.Unavailable) {
		t.Errorf("IsAnnounced wrong for %v", got.Announced)
	}
}

func testFnErrorAborts(t *testing.T, c catalog.Catalog) {
	boom := errors.New("boom")
	k := catalog.Key{TaskID: "task_abort", Index: 0}

	// On an absent entry, nothing is created.
	if _, err := c.Update(ctx(t), k, func(e *catalog.Entry) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Update error = %v, want %v", err, boom)
	}
	if _, err := c.Get(ctx(t), k); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("after aborted create, Get error = %v, want ErrNotFound", err)
	}

	// On an existing entry, nothing changes.
	before := mustUpdate(t, c, k, func(e *catalog.Entry) error {
		e.Message = "kept"
		e.Attempts = 3
		e.Files = []catalog.File{{Kind: catalog.Image, Name: "a.jpg", Location: "files/task_abort/0/a.jpg"}}
		return nil
	})
	_, err := c.Update(ctx(t), k, func(e *catalog.Entry) error {
		e.Message = "lost"
		e.Attempts = 99
		e.Files = nil
		e.To(catalog.Ready, "")
		return fmt.Errorf("wrapped: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error = %v, want wrapping %v", err, boom)
	}
	after := mustGet(t, c, k)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("aborted Update changed the entry:\n got %+v\nwant %+v", after, before)
	}
}

// sortKeyLess is the documented listing order.
func sortKeyLess(a, b catalog.Entry) int {
	if c := b.ReceivedAt.Compare(a.ReceivedAt); c != 0 {
		return c
	}
	if a.TaskID != b.TaskID {
		if a.TaskID < b.TaskID {
			return -1
		}
		return 1
	}
	return a.Index - b.Index
}

func keys(es []catalog.Entry) []catalog.Key {
	out := make([]catalog.Key, len(es))
	for i, e := range es {
		out[i] = e.Key()
	}
	return out
}

func testListPagination(t *testing.T, c catalog.Catalog) {
	var want []catalog.Entry
	for i := range 11 {
		// Several indexes of one task, and several tasks.
		k := catalog.Key{TaskID: fmt.Sprintf("task_%02d", i/3), Index: i % 3}
		want = append(want, mustUpdate(t, c, k, noop))
	}
	slices.SortFunc(want, sortKeyLess)

	var (
		got    []catalog.Entry
		cursor string
		pages  int
	)
	for {
		p, err := c.List(ctx(t), catalog.ListQuery{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatalf("List page %d: %v", pages, err)
		}
		pages++
		if len(p.Items) > 3 {
			t.Fatalf("page %d has %d items, limit 3", pages, len(p.Items))
		}
		got = append(got, p.Items...)
		// New entries arriving between pages are newer: they must not
		// shift, repeat or hide anything in the pages still to come.
		mustUpdate(t, c, catalog.Key{TaskID: fmt.Sprintf("late_%02d", pages), Index: 0}, noop)
		if p.NextCursor == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		cursor = p.NextCursor
	}
	if got, want := pages, 4; got != want {
		t.Errorf("pages = %d, want %d", got, want)
	}
	if !slices.Equal(keys(got), keys(want)) {
		t.Errorf("listed %v\nwant     %v", keys(got), keys(want))
	}

	// The first page now starts with the newest late arrival.
	p, err := c.List(ctx(t), catalog.ListQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || p.Items[0].TaskID != fmt.Sprintf("late_%02d", pages) {
		t.Errorf("first item = %v, want the newest entry late_%02d", keys(p.Items), pages)
	}
	if p.NextCursor == "" {
		t.Error("NextCursor empty although more entries follow")
	}
}

func testListFilter(t *testing.T, c catalog.Catalog) {
	statuses := []catalog.Status{catalog.Ready, catalog.Failed, catalog.Ready, catalog.Pending, catalog.Ready, catalog.Unavailable}
	want := map[catalog.Status][]catalog.Key{}
	for i, s := range statuses {
		k := catalog.Key{TaskID: fmt.Sprintf("filter_%d", i), Index: 0}
		mustUpdate(t, c, k, func(e *catalog.Entry) error {
			e.To(s, "")
			return nil
		})
		want[s] = append([]catalog.Key{k}, want[s]...) // newest first
	}
	for _, s := range []catalog.Status{catalog.Ready, catalog.Failed, catalog.Pending, catalog.Unavailable, catalog.Downloading} {
		t.Run(string(s), func(t *testing.T) {
			var got []catalog.Key
			cursor := ""
			for range 10 {
				p, err := c.List(ctx(t), catalog.ListQuery{Status: s, Limit: 2, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range p.Items {
					if e.Status != s {
						t.Errorf("status filter %q listed %v with status %q", s, e.Key(), e.Status)
					}
				}
				got = append(got, keys(p.Items)...)
				if cursor = p.NextCursor; cursor == "" {
					break
				}
			}
			if !slices.Equal(got, want[s]) {
				t.Errorf("listed %v, want %v", got, want[s])
			}
		})
	}
}

func testListDefaultLimit(t *testing.T, c catalog.Catalog) {
	for i := range catalog.DefaultLimit + 1 {
		mustUpdate(t, c, catalog.Key{TaskID: fmt.Sprintf("many_%03d", i), Index: 0}, noop)
	}
	p, err := c.List(ctx(t), catalog.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(p.Items), catalog.DefaultLimit; got != want {
		t.Errorf("items = %d, want %d", got, want)
	}
	if p.NextCursor == "" {
		t.Fatal("NextCursor empty with one entry left")
	}
	p, err = c.List(ctx(t), catalog.ListQuery{Limit: catalog.MaxLimit + 1000, Cursor: p.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(p.Items), 1; got != want {
		t.Errorf("last page items = %d, want %d", got, want)
	}
	if p.NextCursor != "" {
		t.Errorf("last page NextCursor = %q, want empty", p.NextCursor)
	}
	if got, want := p.Items[0].TaskID, "many_000"; got != want {
		t.Errorf("last item = %q, want the oldest %q", got, want)
	}
}

func testBadCursor(t *testing.T, c catalog.Catalog) {
	mustUpdate(t, c, catalog.Key{TaskID: "x", Index: 0}, noop)
	for _, cur := range []string{"!!!", "not-a-cursor", "e30", "bnVsbA", "%%", "eyJyIjoxfQ"} {
		t.Run(cur, func(t *testing.T) {
			if _, err := c.List(ctx(t), catalog.ListQuery{Cursor: cur}); !errors.Is(err, catalog.ErrBadCursor) {
				t.Errorf("List(cursor %q) error = %v, want ErrBadCursor", cur, err)
			}
		})
	}
}

func testConcurrentUpdates(t *testing.T, c catalog.Catalog) {
	const n = 20
	k := catalog.Key{TaskID: "task_concurrent", Index: 0}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.Update(ctx(t), k, func(e *catalog.Entry) error {
				e.Attempts++
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Update: %v", err)
		}
	}
	if got, want := mustGet(t, c, k).Attempts, n; got != want {
		t.Errorf("attempts = %d, want %d (lost updates)", got, want)
	}
}

func testContextCancelled(t *testing.T, c catalog.Catalog) {
	k := catalog.Key{TaskID: "task_cancel", Index: 0}
	cctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	_, err := c.Update(cctx, k, func(e *catalog.Entry) error {
		called = true
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update with cancelled context error = %v, want context.Canceled", err)
	}
	if called {
		t.Error("fn called despite the cancelled context")
	}
	if _, err := c.Get(ctx(t), k); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Get after cancelled Update error = %v, want ErrNotFound", err)
	}
}

// testContextEndsWhileWaiting: an Update queued behind another Update of the
// same entry gives up when its context ends, and does not disturb the first.
func testContextEndsWhileWaiting(t *testing.T, c catalog.Catalog) {
	k := catalog.Key{TaskID: "task_waiting", Index: 0}
	mustUpdate(t, c, k, noop)
	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Update(ctx(t), k, func(e *catalog.Entry) error {
			close(holding)
			<-release
			e.Attempts++
			return nil
		})
		done <- err
	}()
	<-holding
	wctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Update(wctx, k, func(e *catalog.Entry) error {
		e.Attempts += 100
		return nil
	})
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting Update error = %v, want context.DeadlineExceeded", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("first Update: %v", err)
	}
	if got, want := mustGet(t, c, k).Attempts, 1; got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
}
