//go:build system

package systemtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	tcnats "github.com/testcontainers/testcontainers-go/modules/nats"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/veo4k/veo4k/deployments/internal/watch"
	"github.com/veo4k/veo4k/pkg/signature"
)

// hmacKey signs the callbacks of every stack: the simulator's and the tests'.
const hmacKey = "systemtest-signing-key"

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// images names the images under test, from the same variables as compose.
type images struct{ nats, ingress, fetcher, sim string }

func imagesFromEnv() images {
	prefix := os.Getenv("VEO4K_IMAGE_PREFIX")
	if _, set := os.LookupEnv("VEO4K_IMAGE_PREFIX"); !set {
		prefix = "veo4k/"
	}
	tag := getenv("VEO4K_IMAGE_TAG", "dev")
	return images{
		nats:    getenv("VEO4K_NATS_IMAGE", "nats:2.15.3"),
		ingress: prefix + "ingress:" + tag,
		fetcher: prefix + "fetcher:" + tag,
		sim:     prefix + "providersim:" + tag,
	}
}

// stackOptions shape a stack; zero values take defaults.
type stackOptions struct {
	ingress    int // ingress containers (default 1)
	fetchers   int // fetcher containers (default 2)
	fetcherEnv map[string]string
}

// svc is one running container of the stack.
type svc struct {
	name string // its unique network alias
	c    testcontainers.Container
	url  string // http://127.0.0.1:<fixed host port>
}

// stack is one test's veo4k: two networks ("core": NATS, ingress, fetchers;
// "provider": simulator, ingress, fetchers, so that the provider can be cut
// off alone), and a subscriber on the host.
type stack struct {
	t        *testing.T
	docker   *testcontainers.DockerClient
	core     *testcontainers.DockerNetwork
	provider *testcontainers.DockerNetwork
	nats     *svc
	natsURL  string
	ingress  []*svc
	fetchers []*svc
	sim      *svc
	nc       *nats.Conn
	js       jetstream.JetStream
	events   *watch.Recorder
	http     *http.Client
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freePort returns a loopback TCP port that was free a moment ago. Ports
// are fixed per container so that they survive stop/start.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// publishLoopback publishes port on 127.0.0.1:hostPort.
func publishLoopback(port, hostPort string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.PortBindings = dnetwork.PortMap{
			dnetwork.MustParsePort(port): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}},
		}
	})
}

// hardened runs a container as compose does: read-only root, tmpfs /tmp, no capabilities.
func hardened() testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.ReadonlyRootfs = true
		hc.Tmpfs = map[string]string{"/tmp": "rw,size=64m"}
		hc.CapDrop = []string{"ALL"}
		hc.SecurityOpt = []string{"no-new-privileges:true"}
	})
}

// newStack starts a stack and registers its teardown (containers, networks,
// volumes; on failure the containers' logs are printed first).
func newStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	if o.ingress == 0 {
		o.ingress = 1
	}
	if o.fetchers == 0 {
		o.fetchers = 2
	}
	img := imagesFromEnv()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("connecting to docker: %v", err)
	}
	t.Cleanup(func() { _ = docker.Close() })
	s := &stack{t: t, docker: docker, http: &http.Client{Timeout: 30 * time.Second}}

	// veo4k's images are built locally (scripts/images.sh), never pulled.
	for _, image := range []string{img.ingress, img.fetcher, img.sim} {
		if _, err := docker.ImageInspect(ctx, image); err != nil {
			t.Fatalf("image %s: %v (build it with scripts/images.sh)", image, err)
		}
	}

	id := randomID()
	natsVol, dataVol := "veo4k-st-"+id+"-nats", "veo4k-st-"+id+"-data"
	// Registered first, so it runs after every container is gone.
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		for _, v := range []string{natsVol, dataVol} {
			if _, err := docker.VolumeRemove(cctx, v, client.VolumeRemoveOptions{Force: true}); err != nil {
				t.Logf("removing volume %s: %v", v, err)
			}
		}
	})

	s.core, err = network.New(ctx)
	testcontainers.CleanupNetwork(t, s.core)
	if err != nil {
		t.Fatalf("creating network: %v", err)
	}
	s.provider, err = network.New(ctx)
	testcontainers.CleanupNetwork(t, s.provider)
	if err != nil {
		t.Fatalf("creating network: %v", err)
	}

	// NATS with JetStream on a volume, on a fixed loopback port.
	natsPort := freePort(t)
	nc, err := tcnats.Run(ctx, img.nats,
		testcontainers.WithCmd("-js", "-sd", "/data", "-m", "8222"),
		network.WithNetwork([]string{"nats"}, s.core),
		testcontainers.WithMounts(testcontainers.VolumeMount(natsVol, "/data")),
		publishLoopback("4222/tcp", natsPort),
	)
	if nc != nil {
		s.track(&svc{name: "nats", c: nc})
	}
	if err != nil {
		t.Fatalf("starting nats (%s): %v", img.nats, err)
	}
	s.nats = &svc{name: "nats", c: nc}
	s.natsURL = "nats://127.0.0.1:" + natsPort

	common := map[string]string{
		"VEO4K_NATS_URL":         "nats://nats:4222",
		"VEO4K_WEBHOOK_HMAC_KEY": hmacKey,
		"VEO4K_LOG_LEVEL":        "info",
	}
	for i := 1; i <= o.ingress; i++ {
		env := merge(common, map[string]string{"VEO4K_INGRESS_ADDR": ":8080"})
		s.ingress = append(s.ingress, s.start(ctx, fmt.Sprintf("ingress-%d", i), img.ingress, "8080/tcp", "/readyz", env,
			network.WithNetwork([]string{"ingress", fmt.Sprintf("ingress-%d", i)}, s.core),
			network.WithNetwork([]string{"ingress", fmt.Sprintf("ingress-%d", i)}, s.provider)))
	}
	for i := 1; i <= o.fetchers; i++ {
		env := merge(common, map[string]string{
			"VEO4K_FETCHER_ADDR":           ":8081",
			"VEO4K_DATA_DIR":               "/data",
			"VEO4K_ALLOWED_HOSTS":          "providersim",
			"VEO4K_ALLOW_PRIVATE_NETWORKS": "true",
		}, o.fetcherEnv)
		name := fmt.Sprintf("fetcher-%d", i)
		s.fetchers = append(s.fetchers, s.start(ctx, name, img.fetcher, "8081/tcp", "/readyz", env,
			network.WithNetwork([]string{name}, s.core),
			network.WithNetwork([]string{name}, s.provider),
			testcontainers.WithMounts(testcontainers.VolumeMount(dataVol, "/data"))))
	}
	s.sim = s.start(ctx, "providersim", img.sim, "9090/tcp", "/healthz", map[string]string{
		"PROVIDERSIM_ADDR":         ":9090",
		"PROVIDERSIM_PUBLIC_URL":   "http://providersim:9090",
		"PROVIDERSIM_CALLBACK_URL": "http://ingress:8080/v1/callbacks/4k",
		"VEO4K_WEBHOOK_HMAC_KEY":   hmacKey,
		"VEO4K_LOG_LEVEL":          "info",
	}, network.WithNetwork([]string{"providersim"}, s.provider))

	// The subscriber: another service, on the host, through the mapped port.
	s.nc, err = nats.Connect(s.natsURL, nats.Name("systemtest-subscriber"), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("connecting to nats: %v", err)
	}
	t.Cleanup(s.nc.Close)
	if s.js, err = jetstream.New(s.nc); err != nil {
		t.Fatal(err)
	}
	// The fetchers create VEO4K_VIDEOS; wait for it before subscribing.
	for {
		if _, err := s.js.Stream(ctx, "VEO4K_VIDEOS"); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream VEO4K_VIDEOS never appeared: %v", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if s.events, err = watch.Start(context.Background(), s.js, "systemtest-"+id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		_ = s.events.Stop(cctx)
	})
	return s
}

// poll paces the loops that wait for a condition until a deadline.
func poll() { <-time.After(250 * time.Millisecond) }

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// track schedules the container's teardown, printing its log tail first
// when the test failed.
func (s *stack) track(v *svc) {
	testcontainers.CleanupContainer(s.t, v.c)
	s.t.Cleanup(func() {
		if !s.t.Failed() || v.c == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rc, err := v.c.Logs(ctx)
		if err != nil {
			return
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		s.t.Logf("--- last log lines of %s ---\n%s", v.name, strings.Join(lines, "\n"))
	})
}

// start runs one veo4k container, hardened as in compose, on a fixed
// loopback port, and waits for its health endpoint.
func (s *stack) start(ctx context.Context, name string, image, port, health string, env map[string]string, opts ...testcontainers.ContainerCustomizer) *svc {
	s.t.Helper()
	hostPort := freePort(s.t)
	all := append([]testcontainers.ContainerCustomizer{
		testcontainers.WithEnv(env),
		testcontainers.WithExposedPorts(port),
		publishLoopback(port, hostPort),
		hardened(),
		testcontainers.WithWaitStrategy(wait.ForHTTP(health).WithPort(port).WithStartupTimeout(90 * time.Second)),
	}, opts...)
	c, err := testcontainers.Run(ctx, image, all...)
	v := &svc{name: name, c: c, url: "http://127.0.0.1:" + hostPort}
	if c != nil {
		s.track(v)
	}
	if err != nil {
		s.t.Fatalf("starting %s (%s): %v", name, image, err)
	}
	return v
}

// kill sends SIGKILL to a container.
func (s *stack) kill(v *svc) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.docker.ContainerKill(ctx, v.c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		s.t.Fatalf("killing %s: %v", v.name, err)
	}
}

// stop stops a container gracefully (SIGTERM, then SIGKILL after grace).
func (s *stack) stop(v *svc, grace time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), grace+30*time.Second)
	defer cancel()
	start := time.Now()
	if err := v.c.Stop(ctx, &grace); err != nil {
		s.t.Fatalf("stopping %s: %v", v.name, err)
	}
	st, err := v.c.State(ctx)
	if err != nil {
		s.t.Fatalf("inspecting %s: %v", v.name, err)
	}
	// A graceful stop: the process exited by itself on SIGTERM (a
	// SIGKILL after the grace period would read 137).
	if st.ExitCode != 0 {
		s.t.Errorf("%s exited %d after SIGTERM (%v), want 0: not a graceful shutdown", v.name, st.ExitCode, time.Since(start).Round(time.Millisecond))
	}
}

// startAgain starts a stopped container and waits until it is ready again.
func (s *stack) startAgain(v *svc) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := v.c.Start(ctx); err != nil {
		s.t.Fatalf("starting %s again: %v", v.name, err)
	}
}

// disconnect cuts a container off the provider network; reconnect undoes it.
func (s *stack) disconnect(v *svc) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.docker.NetworkDisconnect(ctx, s.provider.ID, client.NetworkDisconnectOptions{Container: v.c.GetContainerID(), Force: true}); err != nil {
		s.t.Fatalf("disconnecting %s: %v", v.name, err)
	}
}

func (s *stack) reconnect(v *svc) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.docker.NetworkConnect(ctx, s.provider.ID, client.NetworkConnectOptions{Container: v.c.GetContainerID(),
		EndpointConfig: &dnetwork.EndpointSettings{Aliases: []string{v.name}}}); err != nil {
		s.t.Fatalf("reconnecting %s: %v", v.name, err)
	}
}

// --- the simulator's control API ---

// simFile and simTask mirror the simulator's JSON.
type simFile struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type simTask struct {
	TaskID    string    `json:"taskId"`
	Index     int       `json:"index"`
	VideoURLs []string  `json:"videoUrls"`
	ImageURLs []string  `json:"imageUrls"`
	Files     []simFile `json:"files"`
}

func (t simTask) path(f simFile) string {
	return strings.TrimPrefix(f.URL, "http://providersim:9090")
}

type fileStats struct {
	Requests      int64 `json:"requests"`
	RangeRequests int64 `json:"rangeRequests"`
	Full          int64 `json:"full"`
	Partial       int64 `json:"partial"`
	Expired       int64 `json:"expired"`
	ServerErrors  int64 `json:"serverErrors"`
	Drops         int64 `json:"drops"`
	BytesServed   int64 `json:"bytesServed"`
}

type simStats struct {
	Files map[string]fileStats `json:"files"`
}

// do sends a JSON request and decodes a JSON answer into out (if not nil).
func (s *stack) do(method, url string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading answer: %v", method, url, err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: decoding %q: %v", method, url, b, err)
		}
	}
	return resp.StatusCode
}

// createTask adds a task to the simulator (spec as the TaskSpec JSON).
func (s *stack) createTask(spec map[string]any) simTask {
	s.t.Helper()
	var task simTask
	if code := s.do(http.MethodPost, s.sim.url+"/sim/tasks", spec, &task); code != http.StatusCreated {
		s.t.Fatalf("POST /sim/tasks %v: status %d", spec, code)
	}
	return task
}

func (s *stack) patchFaults(taskID string, faults map[string]any) {
	s.t.Helper()
	if code := s.do(http.MethodPatch, s.sim.url+"/sim/tasks/"+taskID, faults, nil); code != http.StatusOK {
		s.t.Fatalf("PATCH /sim/tasks/%s: status %d", taskID, code)
	}
}

func (s *stack) stats() simStats {
	s.t.Helper()
	var st simStats
	if code := s.do(http.MethodGet, s.sim.url+"/sim/stats", nil, &st); code != http.StatusOK {
		s.t.Fatalf("GET /sim/stats: status %d", code)
	}
	return st
}

// --- callbacks, as the provider sends them ---

// callbackBody is the provider's success callback for a simulated task.
func callbackBody(task simTask) []byte {
	b, _ := json.Marshal(map[string]any{
		"code": 200, "msg": "4K Video generated successfully.",
		"data": map[string]any{"taskId": task.TaskID,
			"info": map[string]any{"resultUrls": task.VideoURLs, "imageUrls": task.ImageURLs}},
	})
	return b
}

// sendCallback posts a signed callback for task to an ingress and returns
// the status, or 0 with the error when there was no answer.
func sendCallback(ctx context.Context, hc *http.Client, ingressURL string, task simTask) (int, error) {
	code, _, err := sendCallbackHeader(ctx, hc, ingressURL, task)
	return code, err
}

// sendCallbackHeader is sendCallback that also returns the answer's headers.
func sendCallbackHeader(ctx context.Context, hc *http.Client, ingressURL string, task simTask) (int, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		ingressURL+"/v1/callbacks/4k/"+task.TaskID+"?index="+strconv.Itoa(task.Index), bytes.NewReader(callbackBody(task)))
	if err != nil {
		return 0, nil, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Webhook-Timestamp", ts)
	req.Header.Set("X-Webhook-Signature", signature.Sign([]byte(hmacKey), task.TaskID, ts))
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil
}

// --- the catalog API ---

type catalogFile struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Bytes     int64  `json:"bytes"`
	SHA256    string `json:"sha256"`
	SourceURL string `json:"sourceUrl"`
}

type catalogEntry struct {
	TaskID  string        `json:"taskId"`
	Index   int           `json:"index"`
	Status  string        `json:"status"`
	Message string        `json:"message"`
	Files   []catalogFile `json:"files"`
}

// entry reads an entry through the fetcher API of fetchers[n%len]; ok is
// false when it does not exist (yet).
func (s *stack) entry(n int, taskID string) (catalogEntry, bool) {
	s.t.Helper()
	var e catalogEntry
	f := s.fetchers[n%len(s.fetchers)]
	req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/videos/"+taskID, nil)
	resp, err := s.http.Do(req)
	if err != nil {
		return e, false // a restarting fetcher
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return e, false
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		s.t.Fatalf("decoding entry %s: %v", taskID, err)
	}
	return e, true
}

// waitStatus waits until every task's entry has status want (asking the
// fetchers in turn) and returns the entries; it fails on a final status
// other than want.
func (s *stack) waitStatus(ids []string, want string, timeout time.Duration) map[string]catalogEntry {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	out := map[string]catalogEntry{}
	n := 0
	for _, id := range ids {
		for {
			n++
			e, ok := s.entry(n, id)
			if ok && e.Status == want {
				out[id] = e
				break
			}
			if ok && e.Status != want && (e.Status == "ready" || e.Status == "failed" || e.Status == "unavailable") && want != "ready" {
				s.t.Fatalf("%s: status %s (%q), want %s", id, e.Status, e.Message, want)
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("%s: status %q (%q) after %v, want %s", id, e.Status, e.Message, timeout, want)
			}
			poll()
		}
	}
	return out
}

// verifyFiles checks that the catalog records every file the simulator
// served with its SHA-256, and that the stored bytes (read back through the
// fetcher API) hash to the same value.
func (s *stack) verifyFiles(task simTask, e catalogEntry) {
	s.t.Helper()
	if got, want := len(e.Files), len(task.Files); got != want {
		s.t.Errorf("%s: %d files catalogued, simulator served %d", task.TaskID, got, want)
	}
	for _, sf := range task.Files {
		var cf *catalogFile
		for i := range e.Files {
			if e.Files[i].SourceURL == sf.URL {
				cf = &e.Files[i]
			}
		}
		if cf == nil {
			s.t.Errorf("%s: %s not catalogued", task.TaskID, sf.URL)
			continue
		}
		if sf.SHA256 == "" || cf.SHA256 != sf.SHA256 || cf.Bytes != sf.Size {
			s.t.Errorf("%s/%s: catalog sha256 %s (%d bytes), simulator %s (%d bytes)", task.TaskID, cf.Name, cf.SHA256, cf.Bytes, sf.SHA256, sf.Size)
		}
		resp, err := s.http.Get(s.fetchers[0].url + "/v1/videos/" + task.TaskID + "/files/" + cf.Name)
		if err != nil {
			s.t.Fatalf("reading stored %s/%s: %v", task.TaskID, cf.Name, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			s.t.Fatalf("reading stored %s/%s: status %d, %v", task.TaskID, cf.Name, resp.StatusCode, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sf.SHA256 {
			s.t.Errorf("%s/%s: stored bytes hash to %s, simulator served %s", task.TaskID, cf.Name, got, sf.SHA256)
		}
	}
}

// checkEvents waits until every event stored so far was delivered to the
// subscriber and checks exactly one VideoCataloged per ready entry and one
// VideoFailed per failed one.
func (s *stack) checkEvents(ready, failed []string) watch.Counts {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	keys := func(ids []string) []watch.Key {
		var ks []watch.Key
		for _, id := range ids {
			ks = append(ks, watch.Key{TaskID: id})
		}
		return ks
	}
	_, err := s.events.Wait(ctx, func(c watch.Counts) bool {
		for _, id := range ready {
			if c.Cataloged[watch.Key{TaskID: id}] == 0 {
				return false
			}
		}
		for _, id := range failed {
			if c.Failed[watch.Key{TaskID: id}] == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		s.t.Errorf("events: %v", err)
	}
	if err := s.events.Drain(ctx); err != nil {
		s.t.Errorf("events: %v", err)
	}
	c := s.events.Counts()
	for _, p := range c.Problems(keys(ready), keys(failed)) {
		s.t.Error("events: " + p)
	}
	return c
}
