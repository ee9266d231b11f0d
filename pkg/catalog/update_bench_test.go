package catalog_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/veo4k/veo4k/pkg/catalog"
)

// BenchmarkUpdate is the fetcher's catalog work for one entry: the
// transaction that creates it as downloading, and the one that stores it
// ready with its two files, each committed to a SQLite file.
func BenchmarkUpdate(b *testing.B) {
	ctx := context.Background()
	cat, err := catalog.OpenSQLite(ctx, filepath.Join(b.TempDir(), "catalog.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cat.Close() })
	files := []catalog.File{
		{Kind: catalog.Video, Name: "video_0.mp4", Bytes: 1 << 20, SHA256: "aab1778611974a03fb899337438d527b300b2825e4706338af85ec3f39a8ec7e",
			ContentType: "video/mp4", SourceURL: "https://file.aiquickdraw.com/v/x.mp4", Width: 3840, Height: 2160, DurationMS: 8000, Codec: "avc1"},
		{Kind: catalog.Image, Name: "thumb_0.jpg", Bytes: 6908, SHA256: "e2eaaa0fee52ce386995fa65a32ee5e72ffca8d18cbe680b5b3f72aede02a40a",
			ContentType: "image/jpeg", SourceURL: "https://file.aiquickdraw.com/v/x.jpg", Width: 384, Height: 216},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := catalog.Key{TaskID: "bench_" + strconv.Itoa(i)}
		i++
		if _, err := cat.Update(ctx, k, func(e *catalog.Entry) error {
			e.To(catalog.Downloading, "")
			e.Attempts++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		e, err := cat.Update(ctx, k, func(e *catalog.Entry) error {
			e.Status, e.Message, e.Files = catalog.Ready, "", files
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if got, want := e.Status, catalog.Ready; got != want {
			b.Fatalf("status = %s, want %s", got, want)
		}
	}
}
