package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/catalog"
	"github.com/veo4k/veo4k/pkg/config"
	"github.com/veo4k/veo4k/pkg/providersim"
)

// demo runs the provider simulator on loopback and sends it a handful of
// scenarios, then tells in plain words what happened to each.
type demo struct {
	sim     *providersim.Sim
	ln      net.Listener
	srv     *http.Server
	dataDir string
}

// scenario is one demo entry.
type scenario struct {
	what string
	spec providersim.TaskSpec
	want catalog.Status
}

// newDemo starts the simulator and adjusts cfg so the fetcher may download
// from it (loopback) and the ingress checks the simulator's signatures.
func newDemo(cfg *config.Config, callbackBaseURL string, log *zap.Logger) (*demo, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: starting the provider simulator: %w", err)
	}
	if len(cfg.HMACKeys) == 0 {
		cfg.HMACKeys = []string{randomKey()}
	}
	cfg.AllowPrivateNetworks = true
	cfg.AllowedHosts = append(cfg.AllowedHosts, "127.0.0.1")
	sim := providersim.New(providersim.Config{
		PublicURL:       "http://" + ln.Addr().String(),
		CallbackBaseURL: callbackBaseURL,
		HMACKey:         cfg.HMACKeys[0],
		Log:             log.Named("providersim"),
	})
	d := &demo{sim: sim, ln: ln, srv: &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}, dataDir: cfg.DataDir}
	go func() { _ = d.srv.Serve(ln) }()
	return d, nil
}

func randomKey() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Close stops the simulator.
func (d *demo) Close() {
	_ = d.sim.Close()
	_ = d.srv.Close()
}

func (d *demo) scenarios(run string) []scenario {
	id := func(s string) string { return "demo-" + run + "-" + s }
	return []scenario{
		{"a 4K video and its thumbnail", providersim.TaskSpec{TaskID: id("ok")}, catalog.Ready},
		{"the same callback delivered 3 times", providersim.TaskSpec{TaskID: id("dup"), Duplicates: 3}, catalog.Ready},
		{"the provider says 4K is unavailable", providersim.TaskSpec{TaskID: id("unavailable"), Callback: providersim.CallbackUnavailable}, catalog.Unavailable},
		{"a slow download (2 MiB/s)", providersim.TaskSpec{TaskID: id("slow"), VideoBytes: 8 << 20,
			Faults: providersim.Faults{RateBytesPerSec: 2 << 20}}, catalog.Ready},
		{"a connection dropped mid-file, resumed", providersim.TaskSpec{TaskID: id("dropped"), VideoBytes: 6 << 20,
			Faults: providersim.Faults{DropAfterBytes: 2 << 20, DropTimes: 1}}, catalog.Ready},
		{"a 1080p video: kept, flagged not 4K", providersim.TaskSpec{TaskID: id("hd"), Width: 1920, Height: 1080}, catalog.Ready},
		{"files already deleted by the provider (404)", providersim.TaskSpec{TaskID: id("expired"),
			Faults: providersim.Faults{Expired: true, ExpiredStatus: 404}}, catalog.Failed},
	}
}

// Run sends the scenarios' callbacks to the ingress and reports each entry
// as it settles. It returns when all settled (the standalone keeps running)
// or ctx ends.
func (d *demo) Run(ctx context.Context, out io.Writer, a Addrs, cat catalog.Catalog) error {
	run := time.Now().UTC().Format("150405")
	scs := d.scenarios(run)
	fmt.Fprintf(out, "\ndemo: the provider simulator runs on http://%s; sending %d callbacks (signed)\n", d.ln.Addr(), len(scs))
	sizes := map[string]int64{}
	for _, sc := range scs {
		task, err := d.sim.AddTask(sc.spec)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		for _, f := range task.Files {
			if f.Kind == "video" {
				sizes[sc.spec.TaskID] = f.Size
			}
		}
		res, err := d.sim.SendCallback(ctx, sc.spec.TaskID, 0)
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(out, "  → %-28s %s: callback not accepted: %v\n", sc.spec.TaskID, sc.what, err)
			continue
		}
		fmt.Fprintf(out, "  → %-28s %s: ingress answered %s\n", sc.spec.TaskID, sc.what, statuses(res.Statuses))
	}
	fmt.Fprintln(out)

	settled := map[string]bool{}
	shown := map[string]time.Time{}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for len(settled) < len(scs) {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, sc := range scs {
			id := sc.spec.TaskID
			if settled[id] {
				continue
			}
			e, err := cat.Get(ctx, catalog.Key{TaskID: id})
			if errors.Is(err, catalog.ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("demo: reading the catalog: %w", err)
			}
			switch e.Status {
			case catalog.Ready, catalog.Unavailable, catalog.Failed:
				settled[id] = true
				fmt.Fprintln(out, d.describe(e, sc))
			case catalog.Downloading:
				// A progress line each second for downloads that take a while.
				if time.Since(start) > time.Second && time.Since(shown[id]) >= time.Second {
					shown[id] = time.Now()
					done := partialBytes(d.dataDir, id)
					fmt.Fprintf(out, "  … %-28s downloading %s / %s\n", id, mib(done), mib(sizes[id]))
				}
			}
		}
	}
	api := "http://" + hostPort(a.Fetcher)
	fmt.Fprintf(out, "\ndemo: all %d entries settled in %s. Try:\n", len(scs), time.Since(start).Round(100*time.Millisecond))
	fmt.Fprintf(out, "  curl -s %s/v1/videos                       # the catalog, newest first\n", api)
	fmt.Fprintf(out, "  curl -s %s/v1/videos/%s\n", api, scs[0].spec.TaskID)
	fmt.Fprintf(out, "  curl -s %s/v1/deadletters                  # failed entries, kept for replay\n", api)
	fmt.Fprintf(out, "Press Ctrl-C to stop.\n")
	return nil
}

func (d *demo) describe(e catalog.Entry, sc scenario) string {
	mark := "✓"
	if e.Status != sc.want {
		mark = "!"
	}
	line := fmt.Sprintf("  %s %-28s %-11s", mark, e.TaskID, e.Status)
	if e.Status != catalog.Ready {
		return line + fmt.Sprintf(" %q", e.Message)
	}
	for _, f := range e.Files {
		if f.Kind != catalog.Video {
			continue
		}
		flag := "4K"
		if f.Is4K == nil || !*f.Is4K {
			flag = "not 4K"
		}
		line += fmt.Sprintf(" %d×%d %s %s %.1fs %s  %s", f.Width, f.Height, flag, f.Codec,
			float64(f.DurationMS)/1000, mib(f.Bytes), filepath.Join(d.dataDir, f.Location))
	}
	if n := len(e.Files); n > 1 {
		line += fmt.Sprintf("  (+%d thumbnail)", n-1)
	}
	return line
}

// partialBytes is how much of an entry's video is on disk so far.
func partialBytes(dataDir, taskID string) int64 {
	fi, err := os.Stat(filepath.Join(dataDir, "files", taskID, "0", ".partial", "video-0.mp4"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func statuses(ss []int) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprint(s)
	}
	return strings.Join(parts, ", ")
}
