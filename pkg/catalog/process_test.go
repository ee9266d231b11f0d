package catalog_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/veo4k/veo4k/pkg/catalog"
)

// TestHelperProcessOpen is not a test: TestProcessesCreateTogether runs the
// test binary with it, as a separate process opening the catalog.
func TestHelperProcessOpen(t *testing.T) {
	path := os.Getenv("VEO4K_CATALOG_TEST_PATH")
	if path == "" {
		return
	}
	c, err := catalog.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update(context.Background(), catalog.Key{TaskID: "p" + os.Getenv("VEO4K_CATALOG_TEST_N")}, func(*catalog.Entry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
}

// TestProcessesCreateTogether starts several processes that create the same
// new catalog file at once, as fetcher replicas on a fresh volume do: every
// one must open it and the schema must be applied once.
func TestProcessesCreateTogether(t *testing.T) {
	t.Parallel()
	const rounds, procs = 4, 5
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "catalog.db")
		var wg sync.WaitGroup
		for i := range procs {
			wg.Go(func() {
				cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperProcessOpen$", "-test.count=1")
				cmd.Env = append(os.Environ(), "VEO4K_CATALOG_TEST_PATH="+path, "VEO4K_CATALOG_TEST_N="+string(rune('a'+i)))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("round %d, process %d: %v\n%s", round, i, err, out)
				}
			})
		}
		wg.Wait()
		c, err := catalog.OpenSQLite(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		page, err := c.List(t.Context(), catalog.ListQuery{Limit: 100})
		_ = c.Close()
		if err != nil || len(page.Items) != procs {
			t.Fatalf("round %d: %d entries (%v), want %d", round, len(page.Items), err, procs)
		}
	}
}
