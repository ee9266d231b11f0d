//go:build system

package systemtest

import (
	"os"
	"testing"
)

// TestMain sets the two testcontainers settings this suite relies on unless
// the caller chose otherwise: no reaper container (its image cannot be
// pulled offline; every test removes its own containers, networks and
// volumes), and the host the containers' ports are published on, which is
// always loopback here (testcontainers would guess a bridge gateway when it
// runs inside a container).
func TestMain(m *testing.M) {
	for k, v := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	} {
		if _, set := os.LookupEnv(k); !set {
			_ = os.Setenv(k, v)
		}
	}
	os.Exit(m.Run())
}
