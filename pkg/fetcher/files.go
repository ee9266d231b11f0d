package fetcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/veo4k/veo4k/pkg/catalog"
	"github.com/veo4k/veo4k/pkg/download"
	"github.com/veo4k/veo4k/pkg/media"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// fetchAll downloads and verifies every file of the callback, videos first.
func (f *Fetcher) fetchAll(ctx context.Context, key catalog.Key, cb *veo4kv1.CallbackReceived) ([]catalog.File, error) {
	dir, err := f.store.EntryDir(key)
	if err != nil {
		return nil, &download.Error{Permanent: true, Reason: "invalid entry key", Err: err}
	}
	var files []catalog.File
	for i, u := range cb.GetVideoUrls() {
		file, err := f.fetchOne(ctx, key, dir, catalog.Video, i, u)
		if err != nil {
			return nil, err
		}
		files = append(files, file)
	}
	for i, u := range cb.GetImageUrls() {
		file, err := f.fetchOne(ctx, key, dir, catalog.Image, i, u)
		if err != nil {
			return nil, err
		}
		files = append(files, file)
	}
	return files, nil
}

func (f *Fetcher) fetchOne(ctx context.Context, key catalog.Key, dir string, kind catalog.Kind, i int, url string) (catalog.File, error) {
	name := fileName(kind, i, url)
	loc, err := f.store.Location(key, name)
	if err != nil {
		return catalog.File{}, &download.Error{Permanent: true, Reason: "invalid file name", Err: err}
	}
	file := catalog.File{Kind: kind, Name: name, SourceURL: url, Location: loc}
	verify := func(fh *os.File) error { return probe(fh, &file) }

	// A file renamed into place by an earlier attempt is complete and
	// verified: describe it again instead of downloading it twice.
	if path := filepath.Join(dir, name); exists(path) {
		if err := describeLocal(path, &file, verify); err == nil {
			f.metrics.files.WithLabelValues(string(kind), "reused").Inc()
			return file, nil
		}
	}
	res, err := f.dl.Fetch(ctx, download.Request{URL: url, Dir: dir, Name: name, Verify: verify})
	if err != nil {
		f.metrics.files.WithLabelValues(string(kind), "error").Inc()
		return catalog.File{}, fmt.Errorf("%s: %w", name, err)
	}
	f.metrics.files.WithLabelValues(string(kind), "downloaded").Inc()
	f.metrics.bytes.Add(float64(res.Bytes))
	file.Bytes, file.SHA256 = res.Bytes, res.SHA256
	return file, nil
}

// probe verifies the complete file and fills in what its header says.
func probe(fh *os.File, file *catalog.File) error {
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding: %w", err)
	}
	switch file.Kind {
	case catalog.Video:
		info, err := media.ProbeMP4(fh)
		if err != nil {
			return err
		}
		is4K := info.Is4K
		file.ContentType, file.Width, file.Height = "video/mp4", info.Width, info.Height
		file.DurationMS, file.Codec, file.Is4K = info.DurationMS, info.Codec, &is4K
	default:
		info, err := media.ProbeImage(fh)
		if err != nil {
			return err
		}
		file.ContentType, file.Width, file.Height = info.ContentType, info.Width, info.Height
	}
	return nil
}

func describeLocal(path string, file *catalog.File, verify func(*os.File) error) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = fh.Close() }() // read only
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return err
	}
	if err := verify(fh); err != nil {
		return err
	}
	file.Bytes, file.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist) && err == nil
}
