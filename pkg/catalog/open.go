package catalog

import (
	"context"
	"fmt"
	"strings"
)

// Open opens the catalog named by dsn (VEO4K_CATALOG_DSN), choosing the
// backend by scheme:
//
//	sqlite:///abs/path.db   SQLite file at /abs/path.db
//	sqlite://rel/path.db    SQLite file at rel/path.db (relative to the working directory)
//	sqlite:rel/path.db      the same
//	/abs/path.db, rel.db    a plain path: SQLite
//
// Any other scheme is an error (Postgres is planned, not built).
func Open(ctx context.Context, dsn string) (Catalog, error) {
	if dsn == "" {
		return nil, fmt.Errorf("opening catalog: empty DSN")
	}
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		// sqlite:path, without slashes, is a common spelling too.
		for _, p := range []string{"sqlite:", "sqlite3:"} {
			if len(dsn) > len(p) && strings.EqualFold(dsn[:len(p)], p) {
				return OpenSQLite(ctx, dsn[len(p):])
			}
		}
		return OpenSQLite(ctx, dsn)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		if rest == "" {
			return nil, fmt.Errorf("opening catalog: DSN %q names no file", dsn)
		}
		return OpenSQLite(ctx, rest)
	case "postgres", "postgresql":
		return nil, fmt.Errorf("opening catalog: scheme %q is not supported yet (only sqlite)", scheme)
	default:
		return nil, fmt.Errorf("opening catalog: unknown DSN scheme %q (want sqlite:///path/to/file.db or a plain path)", scheme)
	}
}
