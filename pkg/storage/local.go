// Package storage lays out veo4k's stored files under the data directory so
// that nothing taken from a callback (task id, index, file name) can make a
// path escape it: every name is validated before it becomes a path, and
// files are opened through an os.Root, which refuses "..", absolute paths and
// symlinks that lead out of the directory.
package storage

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/veo4k/veo4k/pkg/catalog"
)

// filesDir is the sub-directory of the root that holds the entries' files.
const filesDir = "files"

// MaxIndex is the largest video index accepted (DESIGN.md: below 100).
const MaxIndex = 99

// ErrInvalidKey is returned for a task id or index that cannot name a directory.
var ErrInvalidKey = errors.New("storage: invalid task id or index")

// ErrInvalidName is returned for a file name or location that could leave its directory.
var ErrInvalidName = errors.New("storage: invalid file name")

// Local stores files in a local directory:
//
//	<root>/files/<taskId>/<index>/<name>
type Local struct {
	root string
}

// OpenLocal prepares dir (created when missing) as the storage root and
// checks that it is writable, so a misconfigured data directory fails at
// start rather than at the first download.
func OpenLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("opening storage: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening storage %q: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, filesDir), 0o750); err != nil {
		return nil, fmt.Errorf("opening storage %q: %w", abs, err)
	}
	probe, err := os.CreateTemp(abs, ".writable-*")
	if err != nil {
		return nil, fmt.Errorf("opening storage %q: directory not writable: %w", abs, err)
	}
	name := probe.Name()
	if err := probe.Close(); err != nil {
		return nil, fmt.Errorf("opening storage %q: %w", abs, err)
	}
	if err := os.Remove(name); err != nil {
		return nil, fmt.Errorf("opening storage %q: %w", abs, err)
	}
	return &Local{root: abs}, nil
}

// Root is the absolute storage root.
func (l *Local) Root() string { return l.root }

// ValidKey reports whether k can name a storage directory: a task id
// matching ^[A-Za-z0-9_-]{1,128}$ and an index in 0..MaxIndex.
func ValidKey(k catalog.Key) bool {
	return ValidTaskID(k.TaskID) && k.Index >= 0 && k.Index <= MaxIndex
}

// ValidTaskID reports whether id matches the ingress's rule ^[A-Za-z0-9_-]{1,128}$.
func ValidTaskID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidName reports whether name can be a stored file's name: one path
// element, not "." or "..", no separators, no NUL, not hidden (a leading dot
// is kept for temporary files), at most 255 bytes.
func ValidName(name string) bool {
	if name == "" || len(name) > 255 || name == "." || name == ".." || strings.HasPrefix(name, ".") {
		return false
	}
	return !strings.ContainsAny(name, "/\\\x00:")
}

// entryRel is the slash-separated directory of k relative to the root.
func entryRel(k catalog.Key) (string, error) {
	if !ValidKey(k) {
		return "", fmt.Errorf("%w: %q/%d", ErrInvalidKey, k.TaskID, k.Index)
	}
	return path.Join(filesDir, k.TaskID, strconv.Itoa(k.Index)), nil
}

// EntryDir returns the absolute directory of entry k's files (not created).
func (l *Local) EntryDir(k catalog.Key) (string, error) {
	rel, err := entryRel(k)
	if err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(rel)), nil
}

// Location returns what the catalog records for file name of entry k: its
// slash-separated path relative to the root, files/<taskId>/<index>/<name>.
func (l *Local) Location(k catalog.Key, name string) (string, error) {
	rel, err := entryRel(k)
	if err != nil {
		return "", err
	}
	if !ValidName(name) {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	return rel + "/" + name, nil
}

// Open opens the file at location (as Location returned it) for reading.
// It refuses anything outside the root: "..", absolute paths, and symlinks
// leading out of it.
func (l *Local) Open(location string) (*os.File, error) {
	if location == "" || strings.ContainsAny(location, "\\\x00") || path.IsAbs(location) || filepath.IsAbs(location) ||
		path.Clean(location) != location || !strings.HasPrefix(location, filesDir+"/") {
		return nil, fmt.Errorf("%w: location %q", ErrInvalidName, location)
	}
	root, err := os.OpenRoot(l.root)
	if err != nil {
		return nil, fmt.Errorf("opening storage root: %w", err)
	}
	defer func() { _ = root.Close() }()
	f, err := root.Open(filepath.FromSlash(location))
	if err != nil {
		return nil, fmt.Errorf("opening stored file: %w", err)
	}
	return f, nil
}
