package download

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// partial is a locked, in-progress download: <dir>/.partial/<name> and its
// sidecar <dir>/.partial/<name>.json. The exclusive flock on the data file
// keeps two Fetches of the same file (in this or another process) apart.
type partial struct {
	dir, name string
	path      string
	metaPath  string
	f         *os.File
}

// partialMeta is the sidecar: what the partial bytes are a prefix of.
type partialMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
	ContentType  string `json:"contentType,omitempty"`
	// Total is the full size, -1 when the server did not say.
	Total int64 `json:"total"`
}

// validator is the value for If-Range, "" when there is none.
func (m partialMeta) validator() string {
	if m.ETag != "" {
		return m.ETag
	}
	return m.LastModified
}

func openPartial(dir, name string) (*partial, error) {
	pdir := filepath.Join(dir, partialDir)
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return nil, transient("creating download directory", err)
	}
	p := &partial{
		dir:      dir,
		name:     name,
		path:     filepath.Join(pdir, name),
		metaPath: filepath.Join(pdir, name+".json"),
	}
	f, err := os.OpenFile(p.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, transient("opening partial file", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, transient(fmt.Sprintf("download of %s in progress elsewhere", name), err)
		}
		return nil, transient("locking partial file", err)
	}
	// The holder we waited on may have renamed this very inode into place
	// (or removed it) before unlocking: then the lock is on a file that is
	// no longer the partial file, and writing to it would corrupt the
	// finished one.
	held, err1 := f.Stat()
	cur, err2 := os.Stat(p.path)
	if err1 != nil || err2 != nil || !os.SameFile(held, cur) {
		_ = f.Close()
		return nil, transient(fmt.Sprintf("download of %s finished elsewhere meanwhile", name), errors.Join(err1, err2))
	}
	p.f = f
	return p, nil
}

func (p *partial) size() (int64, error) {
	st, err := p.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat partial file: %w", err)
	}
	return st.Size(), nil
}

// readMeta returns the sidecar, or a zero meta (no URL) when it is missing
// or unreadable: the partial bytes are then not trusted.
func (p *partial) readMeta() partialMeta {
	b, err := os.ReadFile(p.metaPath)
	if err != nil {
		return partialMeta{Total: -1}
	}
	var m partialMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return partialMeta{Total: -1}
	}
	return m
}

func (p *partial) writeMeta(m partialMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding sidecar: %w", err)
	}
	tmp := p.metaPath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing sidecar: %w", err)
	}
	if err := os.Rename(tmp, p.metaPath); err != nil {
		return fmt.Errorf("renaming sidecar: %w", err)
	}
	return nil
}

// commit moves the complete partial file into place and drops the sidecar.
// The caller has synced the data.
func (p *partial) commit() (string, error) {
	final := finalPath(p.dir, p.name)
	if err := os.Rename(p.path, final); err != nil {
		return "", fmt.Errorf("renaming into place: %w", err)
	}
	if err := syncDir(p.dir); err != nil {
		return "", err
	}
	if err := os.Remove(p.metaPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("removing sidecar: %w", err)
	}
	return final, nil
}

// remove discards the partial file and sidecar (after a permanent failure).
func (p *partial) remove() {
	_ = os.Remove(p.path)
	_ = os.Remove(p.metaPath)
}

// close releases the lock.
func (p *partial) close() { _ = p.f.Close() }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory for sync: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	return nil
}
