// Command run is the benchmark orchestrator behind scripts/bench.sh. On one
// machine, in one run, it measures veo4k next to its baselines, alternating
// the two in every round and taking medians of the rounds (warm-ups are
// discarded), and prints a table with absolute figures, ratios and targets,
// followed by every command it ran so anyone can rerun them one by one:
//
//  1. ingress acceptance: closed-loop load (scripts/bench/load, vegeta) on
//     the Echo no-op baseline (scripts/bench/noop) and on services/ingress
//     (signatures on, publishing to a separate nats-server with file-backed
//     JetStream, waiting for each PubAck);
//  2. download: curl -o versus veo4k's download path (scripts/bench/dl) of
//     the same MP4 from the same loopback server to the same disk, and the
//     peak RSS of the latter for two sizes;
//  3. pipeline: callbacks through services/standalone until catalogued
//     (scripts/bench/pipeline);
//  4. scale-out: one and two services/fetcher processes working off the same
//     backlog against a provider with a per-connection bandwidth cap.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// settings are the benchmark's knobs.
type settings struct {
	bin, work             string
	rounds, dlRounds      int
	duration, warmup      time.Duration
	conns                 int
	dlBytes, dlBigBytes   int64
	pipeCount, pipeRounds int
	scaleCount            int
	scaleVideo, scaleRate int64
	pin                   bool
	only                  map[string]bool
	key                   string
	loadCPU, serverCPU    string
	quick                 bool
}

func main() {
	var s settings
	var only string
	flag.StringVar(&s.bin, "bin", ".bin/bench", "directory holding the built binaries")
	flag.StringVar(&s.work, "work", "/tmp/veo4k-bench", "scratch directory (removed and recreated)")
	flag.BoolVar(&s.quick, "quick", false, "seconds-long smoke run with tiny sizes (CI)")
	flag.IntVar(&s.rounds, "rounds", 3, "measured rounds per comparison (median reported)")
	flag.DurationVar(&s.duration, "duration", 10*time.Second, "ingress: measured load per round")
	flag.DurationVar(&s.warmup, "warmup", 2*time.Second, "ingress: discarded warm-up load before each round")
	flag.IntVar(&s.conns, "conns", 64, "ingress: connections")
	flag.IntVar(&s.dlRounds, "dl-rounds", 5, "download: measured rounds (more than -rounds: one download needs both cores, so it is the most sensitive to other load)")
	flag.Int64Var(&s.dlBytes, "dl-bytes", 1<<30, "download: file size")
	flag.Int64Var(&s.dlBigBytes, "dl-big-bytes", 4<<30, "download: larger file size for the peak-RSS check")
	flag.IntVar(&s.pipeCount, "pipeline-count", 10000, "pipeline: callbacks")
	flag.IntVar(&s.pipeRounds, "pipeline-rounds", 1, "pipeline: rounds")
	flag.IntVar(&s.scaleCount, "scale-count", 160, "scale-out: backlog entries")
	flag.Int64Var(&s.scaleVideo, "scale-video-bytes", 256<<10, "scale-out: video size")
	flag.Int64Var(&s.scaleRate, "scale-rate", 1<<20, "scale-out: provider bandwidth cap per connection, bytes/s")
	flag.BoolVar(&s.pin, "pin", true, "ingress: pin the load generator to CPU 0 and the server side (server, NATS) to CPU 1")
	flag.StringVar(&only, "only", "ingress,download,pipeline,scale", "sections to run")
	flag.Parse()
	if s.quick {
		s.rounds, s.dlRounds, s.duration, s.warmup = 1, 1, time.Second, 300*time.Millisecond
		s.dlBytes, s.dlBigBytes = 16<<20, 64<<20
		s.pipeCount, s.pipeRounds = 40, 1
		s.scaleCount, s.scaleVideo, s.scaleRate = 8, 64<<10, 1<<20
	}
	s.only = map[string]bool{}
	for _, o := range strings.Split(only, ",") {
		s.only[strings.TrimSpace(o)] = true
	}
	s.key = "bench-signing-key"
	s.loadCPU, s.serverCPU = "0", "1"
	if runtime.NumCPU() < 2 {
		s.pin = false
	}
	b := &bench{s: s}
	err := b.run()
	b.stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is one benchmark run.
type bench struct {
	s        settings
	procs    []*proc
	commands []string
	rows     []row
	notes    []string
	ports    int
	// lastCPU is the user+system CPU seconds of the last command output ran.
	lastCPU float64
}

// row is one line of the result table.
type row struct {
	section, what, baseline, veo4k, ratio, target, met string
}

func (b *bench) run() error {
	if err := os.RemoveAll(b.s.work); err != nil {
		return err
	}
	if err := os.MkdirAll(b.s.work, 0o755); err != nil {
		return err
	}
	if err := b.checkDisk(); err != nil {
		return err
	}
	b.ports = 18100
	sections := []struct {
		name string
		fn   func() error
	}{
		{"ingress", b.ingress}, {"download", b.download}, {"pipeline", b.pipeline}, {"scale", b.scale},
	}
	for _, sec := range sections {
		if !b.s.only[sec.name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", sec.name)
		if err := sec.fn(); err != nil {
			return fmt.Errorf("%s: %w", sec.name, err)
		}
		b.stopAll()
	}
	b.print(os.Stdout)
	return nil
}

// checkDisk refuses to start without room for the largest section: the disk
// is shared, and a full one breaks everything on it.
func (b *bench) checkDisk() error {
	need := int64(2 << 30) // NATS stores, logs, margin
	if b.s.only["download"] {
		need = max(need, 2*(b.s.dlBytes+b.s.dlBigBytes)+(2<<30))
	}
	if b.s.only["pipeline"] {
		need = max(need, int64(b.s.pipeCount)*(1<<20+(128<<10))+(2<<30))
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.s.work, &st); err != nil {
		return fmt.Errorf("checking free space in %s: %w", b.s.work, err)
	}
	if free := int64(st.Bavail) * st.Bsize; free < need {
		return fmt.Errorf("%s has %s free, this run needs about %s: free some space or choose smaller sizes", b.s.work, size(free>>20<<20), size(need>>20<<20))
	}
	return nil
}

// tidy removes bulky scratch data once measured (logs stay).
func (b *bench) tidy(paths ...string) {
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			fmt.Fprintln(os.Stderr, "bench: removing", p+":", err)
		}
	}
}

// port hands out loopback ports, fresh for every process.
func (b *bench) port() string {
	b.ports++
	return strconv.Itoa(b.ports)
}

// ---- processes

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// cmdline renders a command as a shell line (environment first).
func cmdline(env []string, args []string) string {
	var parts []string
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		parts = append(parts, k+"="+shellQuote(v))
	}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		safe := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r)
		return !safe
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// pinned prefixes args with taskset when pinning is on.
func (b *bench) pinned(cpu string, args ...string) []string {
	if !b.s.pin || cpu == "" {
		return args
	}
	return append([]string{"taskset", "-c", cpu}, args...)
}

// start starts a long-running process, its output going to work/<name>.log.
func (b *bench) start(name string, env []string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(b.s.work, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	line := cmdline(env, args) + " > " + filepath.Join(b.s.work, name+".log") + " 2>&1 &"
	b.commands = append(b.commands, line)
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(p.done) }()
	b.procs = append(b.procs, p)
	return p, nil
}

// stop ends p (SIGTERM to its process group, SIGKILL after 10 s).
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// stopFrom stops the processes started since the first i.
func (b *bench) stopFrom(i int) {
	for j := len(b.procs) - 1; j >= i; j-- {
		b.procs[j].stop()
	}
	b.procs = b.procs[:i]
}

func (b *bench) stopAll() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		b.procs[i].stop()
	}
	b.procs = nil
}

// output runs a measuring command to completion and returns its stdout.
func (b *bench) output(env []string, args ...string) ([]byte, error) {
	b.commands = append(b.commands, cmdline(env, args))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmdline(env, args), err)
	}
	b.lastCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return out, nil
}

// waitHTTP waits until url answers 200.
func waitHTTP(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond) // polling a process we do not control
	}
	return fmt.Errorf("%s not ready within 30s", url)
}

// waitTCP waits until addr accepts connections.
func waitTCP(addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond) // polling a process we do not control
	}
	return fmt.Errorf("%s not listening within 30s", addr)
}

func (b *bench) exe(name string) string { return filepath.Join(b.s.bin, name) }

// startNATS starts a nats-server with file-backed JetStream under dir.
func (b *bench) startNATS(name, dir, cpu string) (string, error) {
	port := b.port()
	if _, err := b.start(name, nil, b.pinned(cpu, b.exe("nats-server"), "-a", "127.0.0.1", "-p", port, "-js", "-sd", dir)...); err != nil {
		return "", err
	}
	return "nats://127.0.0.1:" + port, waitTCP("127.0.0.1:" + port)
}

// ---- 1. ingress

type loadResult struct {
	Requests uint64         `json:"requests"`
	RPS      float64        `json:"rps"`
	P50ms    float64        `json:"p50_ms"`
	P99ms    float64        `json:"p99_ms"`
	P999ms   float64        `json:"p999_ms"`
	Non2xx   uint64         `json:"non2xx"`
	Codes    map[string]int `json:"codes"`
	Reused   uint64         `json:"reused"`
	Warmup   uint64         `json:"warmup_requests"`
	// CPUus is the server side's CPU time per request (µs), warm-up included.
	CPUus map[string]float64 `json:"-"`
}

func (b *bench) ingress() error {
	natsURL, err := b.startNATS("ingress-nats", filepath.Join(b.s.work, "ingress-nats"), b.s.serverCPU)
	if err != nil {
		return err
	}
	natsProc := b.procs[len(b.procs)-1]
	defer b.tidy(filepath.Join(b.s.work, "ingress-nats"))
	defer b.stopAll()
	ingAddr := "127.0.0.1:" + b.port()
	ingProc, err := b.start("ingress", []string{
		"VEO4K_NATS_URL=" + natsURL, "VEO4K_INGRESS_ADDR=" + ingAddr, "VEO4K_WEBHOOK_HMAC_KEY=" + b.s.key,
	}, b.pinned(b.s.serverCPU, b.exe("ingress"))...)
	if err != nil {
		return err
	}
	noopAddr := "127.0.0.1:" + b.port()
	noopProc, err := b.start("noop", nil, b.pinned(b.s.serverCPU, b.exe("noop"), "-addr", noopAddr)...)
	if err != nil {
		return err
	}
	if err := waitHTTP("http://" + ingAddr + "/readyz"); err != nil {
		return err
	}
	if err := waitHTTP("http://" + noopAddr + "/healthz"); err != nil {
		return err
	}
	targets := strconv.Itoa(max(1000, int(b.s.duration.Seconds()+b.s.warmup.Seconds()+1)*60000))
	servers := map[string][]*proc{"noop": {noopProc}, "veo4k": {ingProc, natsProc}}
	attack := func(name, addr string, round int) (loadResult, error) {
		before := map[string]float64{}
		for _, p := range servers[name] {
			before[p.name] = cpuSeconds(p.cmd.Process.Pid)
		}
		args := b.pinned(b.s.loadCPU, b.exe("load"),
			"-url", "http://"+addr+"/v1/callbacks/4k", "-key", b.s.key,
			"-conns", strconv.Itoa(b.s.conns), "-duration", b.s.duration.String(), "-warmup", b.s.warmup.String(),
			"-targets", targets, "-prefix", fmt.Sprintf("%s_r%d", name, round), "-name", name)
		out, err := b.output(nil, args...)
		if err != nil {
			return loadResult{}, err
		}
		var r loadResult
		if err := json.Unmarshal(out, &r); err != nil {
			return loadResult{}, fmt.Errorf("reading load output %q: %w", out, err)
		}
		r.CPUus = map[string]float64{}
		var cpu []string
		for _, p := range servers[name] {
			us := (cpuSeconds(p.cmd.Process.Pid) - before[p.name]) / float64(r.Requests+r.Warmup) * 1e6
			r.CPUus[p.name] = us
			cpu = append(cpu, fmt.Sprintf("%s %.1f µs", p.name, us))
		}
		fmt.Fprintf(os.Stderr, "   %-6s round %d: %.0f req/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, non-2xx %d (%v); CPU per request: %s\n",
			name, round, r.RPS, r.P50ms, r.P99ms, r.P999ms, r.Non2xx, r.Codes, strings.Join(cpu, ", "))
		if r.Reused > 0 {
			b.notes = append(b.notes, fmt.Sprintf("ingress round %d (%s): %d requests reused a task id (targets ran out)", round, name, r.Reused))
		}
		return r, nil
	}
	var noop, veo []loadResult
	for round := 1; round <= b.s.rounds; round++ {
		// Alternate which goes first, so neither always follows the other.
		order := []string{"noop", "veo4k"}
		if round%2 == 0 {
			order = []string{"veo4k", "noop"}
		}
		for _, name := range order {
			addr := noopAddr
			if name == "veo4k" {
				addr = ingAddr
			}
			r, err := attack(name, addr, round)
			if err != nil {
				return err
			}
			if name == "noop" {
				noop = append(noop, r)
			} else {
				veo = append(veo, r)
			}
		}
	}
	med := func(rs []loadResult, f func(loadResult) float64) float64 {
		var v []float64
		for _, r := range rs {
			v = append(v, f(r))
		}
		return median(v)
	}
	rps := func(r loadResult) float64 { return r.RPS }
	p50 := func(r loadResult) float64 { return r.P50ms }
	p99 := func(r loadResult) float64 { return r.P99ms }
	p999 := func(r loadResult) float64 { return r.P999ms }
	var nonNoop, nonVeo uint64
	for i := range noop {
		nonNoop += noop[i].Non2xx
		nonVeo += veo[i].Non2xx
	}
	nr, vr := med(noop, rps), med(veo, rps)
	b.rows = append(b.rows,
		row{"1 ingress", "requests/s (64 conns, closed loop)", f0(nr), f0(vr), ratio(vr, nr), "≥ 0.70×", met(vr >= 0.7*nr)},
		row{"1 ingress", "latency p50 (ms)", f2(med(noop, p50)), f2(med(veo, p50)), ratio(med(veo, p50), med(noop, p50)), "", ""},
		row{"1 ingress", "latency p99 (ms)", f2(med(noop, p99)), f2(med(veo, p99)), ratio(med(veo, p99), med(noop, p99)), "≤ 2×", met(med(veo, p99) <= 2*med(noop, p99))},
		row{"1 ingress", "latency p99.9 (ms)", f2(med(noop, p999)), f2(med(veo, p999)), ratio(med(veo, p999), med(noop, p999)), "", ""},
		row{"1 ingress", "server-side CPU per request (µs): no-op vs ingress + nats-server", f1(med(noop, func(r loadResult) float64 { return r.CPUus["noop"] })),
			f1(med(veo, func(r loadResult) float64 { return r.CPUus["ingress"] })) + " + " + f1(med(veo, func(r loadResult) float64 { return r.CPUus["ingress-nats"] })),
			ratio(med(veo, func(r loadResult) float64 { return r.CPUus["ingress"] + r.CPUus["ingress-nats"] }), med(noop, func(r loadResult) float64 { return r.CPUus["noop"] })), "", ""},
		row{"1 ingress", "non-2xx (all rounds)", strconv.FormatUint(nonNoop, 10), strconv.FormatUint(nonVeo, 10), "", "0", met(nonVeo == 0)},
	)
	return nil
}

// ---- 2. download

type dlResult struct {
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	MBps       float64 `json:"mb_per_s"`
	PeakRSSKiB int64   `json:"peak_rss_kib"`
}

func (b *bench) download() error {
	simAddr := "127.0.0.1:" + b.port()
	if _, err := b.start("download-providersim", []string{"PROVIDERSIM_ADDR=" + simAddr, "VEO4K_LOG_LEVEL=warn"}, b.exe("providersim")); err != nil {
		return err
	}
	if err := waitHTTP("http://" + simAddr + "/healthz"); err != nil {
		return err
	}
	src := filepath.Join(b.s.work, "download-src")
	dst := filepath.Join(b.s.work, "download-dst")
	defer b.tidy(src, dst)
	for _, d := range []string{src, dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// The MP4s come from providersim once; a static file server then serves
	// them to both clients alike.
	sizes := map[string]int64{"small.mp4": b.s.dlBytes, "big.mp4": b.s.dlBigBytes}
	for _, name := range []string{"small.mp4", "big.mp4"} {
		id := strings.TrimSuffix(name, ".mp4")
		spec := fmt.Sprintf(`{"taskId":"dl_%s","videoBytes":%d,"callback":"none"}`, id, sizes[name])
		if _, err := b.output(nil, "curl", "-sSf", "-o", "/dev/null", "-X", "POST", "-H", "Content-Type: application/json",
			"-d", spec, "http://"+simAddr+"/sim/tasks"); err != nil {
			return err
		}
		if _, err := b.output(nil, "curl", "-sSf", "-o", filepath.Join(src, name),
			"http://"+simAddr+"/files/dl_"+id+"/0/video_0.mp4"); err != nil {
			return err
		}
	}
	staticAddr := "127.0.0.1:" + b.port()
	if _, err := b.start("download-static", nil, b.exe("static"), "-addr", staticAddr, "-dir", src); err != nil {
		return err
	}
	if err := waitHTTP("http://" + staticAddr + "/small.mp4"); err != nil {
		return err
	}
	url := "http://" + staticAddr + "/small.mp4"
	curlFile := filepath.Join(dst, "curl.mp4")
	var curlCPU, veoCPU []float64
	curl := func() (float64, float64, error) {
		out, err := b.output(nil, "curl", "-sSf", "-o", curlFile, "-w", "%{time_total} %{size_download}", url)
		if err != nil {
			return 0, 0, err
		}
		curlCPU = append(curlCPU, b.lastCPU)
		var secs float64
		var n int64
		if _, err := fmt.Sscan(string(out), &secs, &n); err != nil || n != b.s.dlBytes {
			return 0, 0, fmt.Errorf("curl wrote %q", out)
		}
		// For reference only: what curl's file costs to make durable, as
		// veo4k's download path does (fsync before the rename).
		start := time.Now()
		if _, err := b.output(nil, "sync", curlFile); err != nil {
			return 0, 0, err
		}
		syncSecs := time.Since(start).Seconds()
		if err := os.Remove(curlFile); err != nil {
			return 0, 0, err
		}
		return secs, syncSecs, nil
	}
	dl := func(name string, size int64) (dlResult, error) {
		out, err := b.output(nil, b.exe("dl"), "-url", "http://"+staticAddr+"/"+name, "-dir", dst, "-name", "veo4k.mp4")
		if err != nil {
			return dlResult{}, err
		}
		var r dlResult
		if err := json.Unmarshal(out, &r); err != nil || r.Bytes != size {
			return dlResult{}, fmt.Errorf("dl wrote %q", out)
		}
		if size == b.s.dlBytes {
			veoCPU = append(veoCPU, b.lastCPU)
		}
		return r, os.Remove(filepath.Join(dst, "veo4k.mp4"))
	}
	// Warm-up (page cache of the source, first-run effects), discarded.
	if _, _, err := curl(); err != nil {
		return err
	}
	if _, err := dl("small.mp4", b.s.dlBytes); err != nil {
		return err
	}
	curlCPU, veoCPU = nil, nil
	var curlMB, curlSyncMB, veoMB, rss []float64
	mb := func(secs float64) float64 { return float64(b.s.dlBytes) / secs / 1e6 }
	for round := 1; round <= b.s.dlRounds; round++ {
		order := []string{"curl", "veo4k"}
		if round%2 == 0 {
			order = []string{"veo4k", "curl"}
		}
		for _, name := range order {
			if name == "curl" {
				secs, syncSecs, err := curl()
				if err != nil {
					return err
				}
				curlMB = append(curlMB, mb(secs))
				curlSyncMB = append(curlSyncMB, mb(secs+syncSecs))
				fmt.Fprintf(os.Stderr, "   curl   round %d: %.0f MB/s (%.0f MB/s with a final fsync)\n", round, mb(secs), mb(secs+syncSecs))
				continue
			}
			r, err := dl("small.mp4", b.s.dlBytes)
			if err != nil {
				return err
			}
			veoMB = append(veoMB, r.MBps)
			rss = append(rss, float64(r.PeakRSSKiB))
			fmt.Fprintf(os.Stderr, "   veo4k  round %d: %.0f MB/s, peak RSS %d KiB\n", round, r.MBps, r.PeakRSSKiB)
		}
	}
	big, err := dl("big.mp4", b.s.dlBigBytes)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "   veo4k  %s: %.0f MB/s, peak RSS %d KiB\n", size(b.s.dlBigBytes), big.MBps, big.PeakRSSKiB)
	c, v := median(curlMB), median(veoMB)
	small := slices.Max(rss) / 1024
	bigMiB := float64(big.PeakRSSKiB) / 1024
	b.rows = append(b.rows,
		row{"2 download", fmt.Sprintf("MB/s, %s MP4, loopback → same disk (median of %d)", size(b.s.dlBytes), b.s.dlRounds), "curl -o: " + f0(c), f0(v), ratio(v, c), "≥ 0.90×", met(v >= 0.9*c)},
		row{"2 download", "MB/s, for reference: curl -o then fsync of the file", "curl+sync: " + f0(median(curlSyncMB)), f0(v), ratio(v, median(curlSyncMB)), "", ""},
		row{"2 download", "client CPU time (s, user+system) per download", "curl: " + f2(median(curlCPU)), f2(median(veoCPU)), ratio(median(veoCPU), median(curlCPU)), "", ""},
		row{"2 download", fmt.Sprintf("peak RSS (MiB), %s / %s", size(b.s.dlBytes), size(b.s.dlBigBytes)), "", f1(small) + " / " + f1(bigMiB), "", "≤ 64, same",
			met(small <= 64 && bigMiB <= 64 && bigMiB <= small*1.1+1)},
	)
	return nil
}

// ---- 3. pipeline

type pipeResult struct {
	Count     int     `json:"count"`
	Cataloged int     `json:"cataloged"`
	Failed    int     `json:"failed"`
	Seconds   float64 `json:"seconds"`
	PerSec    float64 `json:"entries_per_s"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	Send      float64 `json:"send_seconds"`
	Non200    int64   `json:"non200"`
}

func (b *bench) providersim(name string) (string, error) {
	addr := "127.0.0.1:" + b.port()
	if _, err := b.start(name, []string{"PROVIDERSIM_ADDR=" + addr, "VEO4K_LOG_LEVEL=warn"}, b.exe("providersim")); err != nil {
		return "", err
	}
	return "http://" + addr, waitHTTP("http://" + addr + "/healthz")
}

func (b *bench) pipeline() error {
	sim, err := b.providersim("pipeline-providersim")
	if err != nil {
		return err
	}
	simProc := b.procs[len(b.procs)-1]
	var rs []pipeResult
	var cpuShare []float64
	for round := 1; round <= b.s.pipeRounds; round++ {
		dir := filepath.Join(b.s.work, fmt.Sprintf("pipeline-%d", round))
		ing, fet, nat := "127.0.0.1:"+b.port(), "127.0.0.1:"+b.port(), "127.0.0.1:"+b.port()
		p, err := b.start(fmt.Sprintf("pipeline-standalone-%d", round), []string{
			"VEO4K_DATA_DIR=" + dir, "VEO4K_INGRESS_ADDR=" + ing, "VEO4K_FETCHER_ADDR=" + fet, "VEO4K_NATS_LISTEN=" + nat,
			"VEO4K_WEBHOOK_HMAC_KEY=" + b.s.key, "VEO4K_ALLOWED_HOSTS=127.0.0.1", "VEO4K_ALLOW_PRIVATE_NETWORKS=true",
		}, b.exe("standalone"))
		if err != nil {
			return err
		}
		if err := waitHTTP("http://" + ing + "/readyz"); err != nil {
			return err
		}
		saBefore, simBefore, start := cpuSeconds(p.cmd.Process.Pid), cpuSeconds(simProc.cmd.Process.Pid), time.Now()
		out, err := b.output(nil, b.exe("pipeline"), "-sim", sim, "-ingress", "http://"+ing+"/v1/callbacks/4k",
			"-nats", "nats://"+nat, "-key", b.s.key, "-count", strconv.Itoa(b.s.pipeCount), "-video-bytes", "1048576",
			"-prefix", fmt.Sprintf("pipe_r%d", round))
		if err != nil {
			return err
		}
		// CPU used while the driver ran (task creation included), as a
		// share of both cores: how close the machine was to CPU-bound.
		wall := time.Since(start).Seconds()
		saCPU, simCPU := cpuSeconds(p.cmd.Process.Pid)-saBefore, cpuSeconds(simProc.cmd.Process.Pid)-simBefore
		share := (saCPU + simCPU + b.lastCPU) / (wall * float64(runtime.NumCPU()))
		cpuShare = append(cpuShare, share)
		fmt.Fprintf(os.Stderr, "   CPU during the run (%.1f s wall incl. task creation): standalone %.1f s, providersim %.1f s, driver %.1f s = %.0f%% of %d cores\n",
			wall, saCPU, simCPU, b.lastCPU, 100*share, runtime.NumCPU())
		p.stop()
		b.tidy(dir) // its videos, catalog and NATS store: about 1.1 MiB per callback
		var r pipeResult
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("reading pipeline output %q: %w", out, err)
		}
		fmt.Fprintf(os.Stderr, "   round %d: %d catalogued in %.2f s = %.0f entries/s, latency p50 %.0f ms p99 %.0f ms (callbacks sent in %.2f s, %d failed, %d non-200)\n",
			round, r.Cataloged, r.Seconds, r.PerSec, r.P50ms, r.P99ms, r.Send, r.Failed, r.Non200)
		if r.Failed > 0 || r.Non200 > 0 {
			b.notes = append(b.notes, fmt.Sprintf("pipeline round %d: %d failed, %d non-200 answers", round, r.Failed, r.Non200))
		}
		rs = append(rs, r)
	}
	get := func(f func(pipeResult) float64) float64 {
		var v []float64
		for _, r := range rs {
			v = append(v, f(r))
		}
		return median(v)
	}
	per := get(func(r pipeResult) float64 { return r.PerSec })
	b.rows = append(b.rows,
		row{"3 pipeline", fmt.Sprintf("entries/s, %d callbacks (1 MiB video + thumbnail), standalone", b.s.pipeCount), "", f0(per), "", "≥ 200", met(per >= 200)},
		row{"3 pipeline", "CPU busy (standalone + providersim + driver), share of all cores", "", fmt.Sprintf("%.0f%%", 100*median(cpuShare)), "", "", ""},
		row{"3 pipeline", "time until all catalogued (s)", "", f2(get(func(r pipeResult) float64 { return r.Seconds })), "", "", ""},
		row{"3 pipeline", "callback 200 → VideoCataloged p50 / p99 (ms)", "",
			f0(get(func(r pipeResult) float64 { return r.P50ms })) + " / " + f0(get(func(r pipeResult) float64 { return r.P99ms })), "", "", ""},
	)
	return nil
}

// ---- 4. scale-out

func (b *bench) scale() error {
	sim, err := b.providersim("scale-providersim")
	if err != nil {
		return err
	}
	var one, two []float64
	for round := 1; round <= b.s.rounds; round++ {
		order := []int{1, 2}
		if round%2 == 0 {
			order = []int{2, 1}
		}
		for _, n := range order {
			r, err := b.scaleRound(sim, round, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "   %d fetcher(s) round %d: %d entries in %.2f s = %.1f entries/s\n", n, round, r.Cataloged, r.Seconds, r.PerSec)
			if n == 1 {
				one = append(one, r.PerSec)
			} else {
				two = append(two, r.PerSec)
			}
		}
	}
	o, t := median(one), median(two)
	what := fmt.Sprintf("entries/s, backlog of %d (%s video + thumbnail), provider capped at %s/s per connection, %d downloads per fetcher",
		b.s.scaleCount, size(b.s.scaleVideo), size(b.s.scaleRate), 4)
	b.rows = append(b.rows, row{"4 scale-out", what, "1 fetcher: " + f1(o), "2 fetchers: " + f1(t), ratio(t, o), "≥ 1.80×", met(t >= 1.8*o)})
	return nil
}

func (b *bench) scaleRound(sim string, round, n int) (pipeResult, error) {
	dir := filepath.Join(b.s.work, fmt.Sprintf("scale-%d-%d", round, n))
	defer b.tidy(filepath.Join(dir, "data"), filepath.Join(dir, "nats"))
	defer b.stopFrom(len(b.procs))
	natsURL, err := b.startNATS(fmt.Sprintf("scale-nats-%d-%d", round, n), filepath.Join(dir, "nats"), "")
	if err != nil {
		return pipeResult{}, err
	}
	ing := "127.0.0.1:" + b.port()
	if _, err := b.start(fmt.Sprintf("scale-ingress-%d-%d", round, n), []string{
		"VEO4K_NATS_URL=" + natsURL, "VEO4K_INGRESS_ADDR=" + ing, "VEO4K_WEBHOOK_HMAC_KEY=" + b.s.key,
	}, b.exe("ingress")); err != nil {
		return pipeResult{}, err
	}
	if err := waitHTTP("http://" + ing + "/readyz"); err != nil {
		return pipeResult{}, err
	}
	// Each fetcher runs in a subshell that records its exit status if it
	// ends on its own (SIGTERM at the end of the round kills the subshell
	// first, so a clean stop leaves no file): any .exit file voids the round.
	// The second fetcher starts once the first serves /healthz, that is once
	// it has created the shared SQLite catalog: two processes creating a new
	// catalog file at the same instant can fail with SQLITE_BUSY at the
	// migration (a pkg/catalog defect this benchmark found: 2 of 6
	// simultaneous starts), and this benchmark measures throughput, not that.
	var fetchers []string
	firstAddr := ""
	for i := 1; i <= n; i++ {
		addr := "127.0.0.1:" + b.port()
		if i == 1 {
			firstAddr = addr
		}
		env := []string{
			"VEO4K_NATS_URL=" + natsURL, "VEO4K_DATA_DIR=" + filepath.Join(dir, "data"), "VEO4K_FETCHER_ADDR=" + addr,
			"VEO4K_ALLOWED_HOSTS=127.0.0.1", "VEO4K_ALLOW_PRIVATE_NETWORKS=true",
		}
		log := filepath.Join(dir, fmt.Sprintf("fetcher-%d", i))
		start := ""
		if i > 1 {
			start = "until curl -sf -o /dev/null http://" + firstAddr + "/healthz; do sleep 0.02; done; "
		}
		fetchers = append(fetchers, "("+start+cmdline(env, []string{b.exe("fetcher")})+" > "+log+".log 2>&1; echo $? > "+log+".exit) &")
	}
	then := strings.Join(fetchers, " ") + " wait"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return pipeResult{}, err
	}
	out, err := b.output(nil, b.exe("pipeline"), "-sim", sim, "-ingress", "http://"+ing+"/v1/callbacks/4k",
		"-nats", natsURL, "-key", b.s.key, "-count", strconv.Itoa(b.s.scaleCount),
		"-video-bytes", strconv.FormatInt(b.s.scaleVideo, 10), "-rate", strconv.FormatInt(b.s.scaleRate, 10),
		"-prefix", fmt.Sprintf("scale_r%d_n%d", round, n), "-then", then)
	if err != nil {
		return pipeResult{}, err
	}
	var r pipeResult
	if err := json.Unmarshal(out, &r); err != nil {
		return pipeResult{}, fmt.Errorf("reading pipeline output %q: %w", out, err)
	}
	if exits, _ := filepath.Glob(filepath.Join(dir, "fetcher-*.exit")); len(exits) > 0 {
		return r, fmt.Errorf("scale-out round %d with %d fetchers: a fetcher stopped during the round (%s): see its log", round, n, strings.Join(exits, ", "))
	}
	if r.Failed > 0 {
		return r, fmt.Errorf("scale-out round %d with %d fetchers: %d entries failed", round, n, r.Failed)
	}
	return r, nil
}

// ---- output

func (b *bench) print(w io.Writer) {
	bw := bufio.NewWriter(w)
	defer func() { _ = bw.Flush() }()
	host, _ := os.Hostname()
	fmt.Fprintf(bw, "veo4k benchmark, %s, host %s: %d cores (%s), %s, %s\n", time.Now().UTC().Format(time.RFC3339), host, runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOARCH)
	fmt.Fprintf(bw, "rounds: %d (median reported; baseline and veo4k alternate, warm-ups discarded)", b.s.rounds)
	if b.s.quick {
		fmt.Fprint(bw, " — QUICK smoke run: tiny sizes, figures meaningless")
	}
	fmt.Fprintln(bw)
	if b.s.pin {
		fmt.Fprintln(bw, "ingress pinning: load generator on CPU 0; server side (no-op server, or ingress + nats-server) on CPU 1. Other sections unpinned; all processes share the 2 cores.")
	} else {
		fmt.Fprintln(bw, "no pinning: load generator, servers and NATS share all cores.")
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| # | measurement | baseline | veo4k | ratio | target | met |")
	fmt.Fprintln(bw, "|---|---|---|---|---|---|---|")
	for _, r := range b.rows {
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s | %s |\n", r.section, r.what, r.baseline, r.veo4k, r.ratio, r.target, r.met)
	}
	for _, n := range b.notes {
		fmt.Fprintln(bw, "note:", n)
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "commands (in order; binaries built by scripts/bench.sh into "+b.s.bin+"):")
	for _, c := range b.commands {
		fmt.Fprintln(bw, "  "+c)
	}
}

// cpuSeconds is the user+system CPU time pid has used so far (0 if unknown).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, base float64) string {
	if base == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/base)
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
