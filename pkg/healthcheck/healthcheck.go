// Package healthcheck probes a service's HTTP health endpoint and turns the
// answer into a process exit code, so that images without a shell or curl
// (FROM scratch) can still carry a Docker or Compose healthcheck: the probe
// is the service binary itself, or a tiny companion binary, run with a URL.
package healthcheck

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Timeout bounds one probe, connection and answer included.
const Timeout = 2 * time.Second

// Run GETs url with a Timeout deadline and returns the exit code for the
// probe: 0 when the answer is 2xx, 1 otherwise. The reason for a failure is
// written to standard error, where Docker keeps it in the health log.
func Run(url string) int {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := Check(ctx, http.DefaultTransport, url); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

// Check GETs url through rt and reports an error unless the answer is 2xx.
// Redirects are not followed: a health endpoint answers for itself.
func Check(ctx context.Context, rt http.RoundTripper, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("building request for %q: %w", url, err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("probing %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probing %s: status %d", url, resp.StatusCode)
	}
	return nil
}
