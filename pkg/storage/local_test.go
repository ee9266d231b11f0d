package storage_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/veo4k/veo4k/pkg/catalog"
	"github.com/veo4k/veo4k/pkg/storage"
)

func openLocal(t *testing.T) *storage.Local {
	t.Helper()
	l, err := storage.OpenLocal(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatalf("OpenLocal: %v", err)
	}
	return l
}

func TestOpenLocal(t *testing.T) {
	t.Parallel()
	l := openLocal(t)
	if !filepath.IsAbs(l.Root()) {
		t.Errorf("Root() = %q, want absolute", l.Root())
	}
	if fi, err := os.Stat(filepath.Join(l.Root(), "files")); err != nil || !fi.IsDir() {
		t.Errorf("files directory not created: %v", err)
	}
	entries, err := os.ReadDir(l.Root())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("root holds %d entries, want only files/ (writability probe left behind?)", len(entries))
	}
}

func TestOpenLocalNotWritable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 || runtime.GOOS == "windows" {
		// Permissions do not bind root; a regular file in the way fails for everyone.
		parent := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(parent, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := storage.OpenLocal(filepath.Join(parent, "data")); err == nil {
			t.Fatal("OpenLocal below a regular file succeeded")
		}
		return
	}
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o750) })
	_, err := storage.OpenLocal(dir)
	if err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("OpenLocal(read-only) error = %v, want 'not writable'", err)
	}
}

func TestEntryDirAndLocation(t *testing.T) {
	t.Parallel()
	l := openLocal(t)
	long := strings.Repeat("a", 128)
	tests := []struct {
		name     string
		key      catalog.Key
		file     string
		wantDir  string // relative to root, slash-separated; "" means refused
		wantLoc  string
		nameFail bool
	}{
		{"plain", catalog.Key{TaskID: "veo_task-1", Index: 0}, "video.mp4", "files/veo_task-1/0", "files/veo_task-1/0/video.mp4", false},
		{"max index", catalog.Key{TaskID: long, Index: 99}, "image.jpg", "files/" + long + "/99", "files/" + long + "/99/image.jpg", false},
		{"dotdot id", catalog.Key{TaskID: "..", Index: 0}, "v.mp4", "", "", false},
		{"slash id", catalog.Key{TaskID: "a/b", Index: 0}, "v.mp4", "", "", false},
		{"traversal id", catalog.Key{TaskID: "../x", Index: 0}, "v.mp4", "", "", false},
		{"absolute id", catalog.Key{TaskID: "/etc", Index: 0}, "v.mp4", "", "", false},
		{"empty id", catalog.Key{TaskID: "", Index: 0}, "v.mp4", "", "", false},
		{"too long id", catalog.Key{TaskID: long + "a", Index: 0}, "v.mp4", "", "", false},
		{"dot id", catalog.Key{TaskID: "a.b", Index: 0}, "v.mp4", "", "", false},
		{"negative index", catalog.Key{TaskID: "t", Index: -1}, "v.mp4", "", "", false},
		{"index 100", catalog.Key{TaskID: "t", Index: 100}, "v.mp4", "", "", false},
		{"name dotdot", catalog.Key{TaskID: "t", Index: 0}, "..", "files/t/0", "", true},
		{"name traversal", catalog.Key{TaskID: "t", Index: 0}, "../x", "files/t/0", "", true},
		{"name slash", catalog.Key{TaskID: "t", Index: 0}, "a/b", "files/t/0", "", true},
		{"name backslash", catalog.Key{TaskID: "t", Index: 0}, `a\b`, "files/t/0", "", true},
		{"name absolute", catalog.Key{TaskID: "t", Index: 0}, "/etc/passwd", "files/t/0", "", true},
		{"name hidden", catalog.Key{TaskID: "t", Index: 0}, ".part", "files/t/0", "", true},
		{"name NUL", catalog.Key{TaskID: "t", Index: 0}, "a\x00b", "files/t/0", "", true},
		{"name empty", catalog.Key{TaskID: "t", Index: 0}, "", "files/t/0", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, err := l.EntryDir(tt.key)
			if tt.wantDir == "" {
				if !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("EntryDir(%v) = %q, %v; want ErrInvalidKey", tt.key, dir, err)
				}
				if loc, err := l.Location(tt.key, tt.file); !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("Location(%v) = %q, %v; want ErrInvalidKey", tt.key, loc, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("EntryDir(%v): %v", tt.key, err)
			}
			if got, want := dir, filepath.Join(l.Root(), filepath.FromSlash(tt.wantDir)); got != want {
				t.Errorf("EntryDir = %q, want %q", got, want)
			}
			loc, err := l.Location(tt.key, tt.file)
			if tt.nameFail {
				if !errors.Is(err, storage.ErrInvalidName) {
					t.Errorf("Location(%q) = %q, %v; want ErrInvalidName", tt.file, loc, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Location: %v", err)
			}
			if got, want := loc, tt.wantLoc; got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	l, err := storage.OpenLocal(filepath.Join(base, "data"))
	if err != nil {
		t.Fatal(err)
	}
	k := catalog.Key{TaskID: "task", Index: 0}
	dir, err := l.EntryDir(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "video.mp4"), []byte("inside"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(base, "secret.txt")
	if err := os.WriteFile(secret, []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Symlinks inside the entry directory: one out of the root, one staying inside.
	if err := os.Symlink(secret, filepath.Join(dir, "escape.mp4")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base), filepath.Join(l.Root(), "files", "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("video.mp4", filepath.Join(dir, "inner.mp4")); err != nil {
		t.Fatal(err)
	}

	loc, err := l.Location(k, "video.mp4")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		location string
		want     string // "" means refused
	}{
		{"stored file", loc, "inside"},
		{"symlink inside root", "files/task/0/inner.mp4", "inside"},
		{"dotdot", "files/../../secret.txt", ""},
		{"leading dotdot", "../secret.txt", ""},
		{"absolute", secret, ""},
		{"symlink out of root", "files/task/0/escape.mp4", ""},
		{"symlinked dir out of root", "files/linkdir/secret.txt", ""},
		{"not under files", "secret.txt", ""},
		{"backslash", `files\task\0\video.mp4`, ""},
		{"unclean", "files/task/./0/video.mp4", ""},
		{"empty", "", ""},
		{"missing", "files/task/0/nothing.mp4", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := l.Open(tt.location)
			if tt.want == "" {
				if err == nil {
					b, _ := io.ReadAll(f)
					_ = f.Close()
					t.Fatalf("Open(%q) succeeded and read %q, want refused", tt.location, b)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.location, err)
			}
			defer func() { _ = f.Close() }()
			b, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b); got != tt.want {
				t.Errorf("read %q, want %q", got, tt.want)
			}
		})
	}
}
