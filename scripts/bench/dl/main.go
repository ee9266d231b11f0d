// Command dl downloads one file through veo4k's real download path, as the
// fetcher does it (pkg/download.Client.Fetch: streaming to a partial file,
// SHA-256 on the way, fsync, the MP4 check of pkg/media, rename into place),
// and prints one JSON line: bytes, seconds, MB/s and the process's peak RSS
// (VmHWM), so the benchmark can compare it with curl and check that memory
// stays flat whatever the file size.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/veo4k/veo4k/pkg/download"
	"github.com/veo4k/veo4k/pkg/media"
)

// Result is one download's figures.
type Result struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mb_per_s"`
	SHA256  string  `json:"sha256"`
	// PeakRSSKiB is VmHWM from /proc/self/status at the end.
	PeakRSSKiB int64 `json:"peak_rss_kib"`
}

func main() {
	src := flag.String("url", "", "http URL of the MP4 to fetch (loopback)")
	dir := flag.String("dir", ".", "directory of the final file")
	name := flag.String("name", "video.mp4", "final file name")
	flag.Parse()
	if err := run(*src, *dir, *name); err != nil {
		fmt.Fprintln(os.Stderr, "dl:", err)
		os.Exit(1)
	}
}

func run(src, dir, name string) error {
	u, err := url.Parse(src)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("bad -url %q", src)
	}
	c, err := download.New(download.Config{AllowedHosts: []string{u.Hostname()}, AllowPrivateNetworks: true})
	if err != nil {
		return err
	}
	verify := func(f *os.File) error {
		_, err := media.ProbeMP4(f)
		return err
	}
	start := time.Now()
	res, err := c.Fetch(context.Background(), download.Request{URL: src, Dir: dir, Name: name, Verify: verify})
	if err != nil {
		return fmt.Errorf("fetching: %w", err)
	}
	secs := time.Since(start).Seconds()
	hwm, err := peakRSS()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(Result{
		Bytes: res.Bytes, Seconds: secs, MBps: float64(res.Bytes) / secs / 1e6,
		SHA256: res.SHA256, PeakRSSKiB: hwm,
	})
}

// peakRSS reads VmHWM (KiB) from /proc/self/status.
func peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("reading /proc/self/status: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}
