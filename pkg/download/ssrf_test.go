package download

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// trap is a real TCP listener that reports every connection it accepts, to
// prove a refused download never reached it.
type trap struct {
	ln       net.Listener
	accepted chan string // remote addresses, in accept order
}

func newTrap(t *testing.T, network, addr string) *trap {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	tr := &trap{ln: ln, accepted: make(chan string, 1024)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tr.accepted <- c.RemoteAddr().String()
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return tr
}

func (tr *trap) port() string {
	_, p, _ := net.SplitHostPort(tr.ln.Addr().String())
	return p
}

// assertUntouched connects to the trap itself and waits until that probe is
// accepted: the accept queue is FIFO, so any connection a fetch made would
// have been accepted before the probe.
func (tr *trap) assertUntouched(t *testing.T) {
	t.Helper()
	c, err := net.Dial(tr.ln.Addr().Network(), tr.ln.Addr().String())
	if err != nil {
		t.Fatalf("probing trap: %v", err)
	}
	defer c.Close()
	probe := c.LocalAddr().String()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-tr.accepted:
			if got == probe {
				return
			}
			t.Errorf("listener %s accepted a connection from %s: a refused fetch reached it", tr.ln.Addr(), got)
		case <-timeout:
			t.Fatal("trap never accepted its own probe")
		}
	}
}

func TestFetchRefusesUnsafeTargets(t *testing.T) {
	t.Parallel()
	v4 := newTrap(t, "tcp4", "127.0.0.1:0")
	traps := []*trap{v4}
	v6port := "9" // discard port; never reached either way
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		_ = ln.Close()
		v6 := newTrap(t, "tcp6", "[::1]:0")
		traps = append(traps, v6)
		v6port = v6.port()
	} else {
		t.Logf("no IPv6 loopback here (%v): [::1] case checks the refusal only", err)
	}
	p := v4.port()

	c, err := New(Config{
		AllowedHosts: []string{
			"127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254",
			"::1", "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1", "fd00::1", "fe80::1",
			"224.0.0.1", "localhost", "files.example.com",
		},
		Attempts:     1,
		RetryBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, url, reason string
	}{
		{"loopback", "https://127.0.0.1:" + p + "/v.mp4", "refused address 127.0.0.1: loopback"},
		{"rfc1918 10/8", "https://10.0.0.1:" + p + "/v.mp4", "refused address 10.0.0.1: private"},
		{"rfc1918 172.16/12", "https://172.16.0.1/v.mp4", "refused address 172.16.0.1: private"},
		{"rfc1918 192.168/16", "https://192.168.1.1/v.mp4", "refused address 192.168.1.1: private"},
		{"cloud metadata", "https://169.254.169.254/latest/meta-data/", "refused address 169.254.169.254: link-local"},
		{"cgnat", "https://100.64.0.1/v.mp4", "carrier-grade NAT"},
		{"ipv6 loopback", "https://[::1]:" + v6port + "/v.mp4", "refused address ::1: loopback"},
		{"ipv4-mapped loopback", "https://[::ffff:127.0.0.1]:" + p + "/v.mp4", "127.0.0.1: loopback"},
		{"ipv6 unique local", "https://[fd00::1]/v.mp4", "unique local"},
		{"ipv6 link-local", "https://[fe80::1]/v.mp4", "link-local"},
		{"multicast", "https://224.0.0.1/v.mp4", "multicast"},
		{"unspecified", "https://0.0.0.0:" + p + "/v.mp4", "refused address 0.0.0.0: unspecified"},
		{"allowed name resolving to loopback", "https://localhost:" + p + "/v.mp4", ": loopback"},
		{"allow-list is case-insensitive, address still checked", "https://LocalHost:" + p + "/v.mp4", ": loopback"},
		{"host not on allow-list", "https://evil.example.net:" + p + "/v.mp4", `host "evil.example.net" is not on the allow-list`},
		{"apex of wildcard-less entry", "https://example.com/v.mp4", "not on the allow-list"},
		{"file scheme", "file:///etc/passwd", `scheme "file" not allowed`},
		{"ftp scheme", "ftp://127.0.0.1:" + p + "/v.mp4", `scheme "ftp" not allowed`},
		{"plain http", "http://127.0.0.1:" + p + "/v.mp4", "scheme http not allowed"},
		{"userinfo", "https://user:secret@127.0.0.1:" + p + "/v.mp4", "credentials in URL not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, err := c.Fetch(context.Background(), Request{URL: tt.url, Dir: dir, Name: "v.mp4"})
			if !IsPermanent(err) {
				t.Fatalf("err = %v, want permanent refusal", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks URL credentials", err)
			}
			assertNoFinal(t, dir, "v.mp4")
		})
	}
	t.Cleanup(func() {
		for _, tr := range traps {
			tr.assertUntouched(t)
		}
	})
}

func TestFetchRefusesUnsafeRedirects(t *testing.T) {
	t.Parallel()
	tr := newTrap(t, "tcp4", "127.0.0.1:0")
	target := map[string]string{
		"/to-loopback": "https://127.0.0.1:" + tr.port() + "/v.mp4",
		"/to-metadata": "https://169.254.169.254/latest/meta-data/",
		"/to-http":     "http://files.example.com/v.mp4",
		"/to-other":    "https://other.example.net/v.mp4",
		"/to-file":     "file:///etc/passwd",
		"/to-userinfo": "https://u:p@files.example.com/v.mp4",
	}
	var (
		mu   sync.Mutex
		hits int
	)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Redirect(w, r, target[r.URL.Path], http.StatusFound)
	}))
	defer srv.Close()
	srvAddr := netip.MustParseAddrPort(srv.Listener.Addr().String())

	c, err := New(Config{
		AllowedHosts: []string{"127.0.0.1", "169.254.169.254", "files.example.com"},
		Attempts:     1,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The allowed origin is itself a loopback test server: let exactly it
	// through the address check, and trust its certificate.
	c.exempt = func(ap netip.AddrPort) bool { return ap == srvAddr }
	c.transport.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	c.transport.TLSClientConfig.MinVersion = tls.VersionTLS12

	tests := []struct {
		path, reason string
	}{
		{"/to-loopback", "refused address 127.0.0.1: loopback"},
		{"/to-metadata", "refused address 169.254.169.254: link-local"},
		{"/to-http", "redirect refused http://files.example.com/v.mp4: scheme http not allowed"},
		{"/to-other", `redirect refused https://other.example.net/v.mp4: host "other.example.net" is not on the allow-list`},
		{"/to-file", `scheme "file" not allowed`},
		{"/to-userinfo", "credentials in URL not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			dir := t.TempDir()
			_, err := c.Fetch(context.Background(), Request{URL: srv.URL + tt.path, Dir: dir, Name: "v.mp4"})
			if !IsPermanent(err) {
				t.Fatalf("err = %v, want permanent refusal", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			assertNoFinal(t, dir, "v.mp4")
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := hits, len(tests); got != want {
		t.Errorf("allowed origin served %d requests, want %d (one per case)", got, want)
	}
	tr.assertUntouched(t)
}

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	c := &Client{blocked: blockedRanges()}
	tests := []struct {
		addr    string
		blocked bool
	}{
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"2606:4700:4700::1111", false},
		{"::ffff:8.8.8.8", false},
		{"127.0.0.53", true},
		{"::ffff:10.1.2.3", true},
		{"::ffff:169.254.169.254", true},
		{"100.127.255.255", true},
		{"255.255.255.255", true},
		{"198.18.0.1", true},
		{"64:ff9b::a00:1", true},
		{"2002:7f00:1::", true},
		{"fe80::1%eth0", true},
		{"ff02::1", true},
		{"::", true},
	}
	for _, tt := range tests {
		if got := c.checkAddr(netip.MustParseAddr(tt.addr)) != ""; got != tt.blocked {
			t.Errorf("checkAddr(%s) blocked = %v, want %v", tt.addr, got, tt.blocked)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	c, err := New(Config{AllowedHosts: []string{"aiquickdraw.com", "*.aiquickdraw.com", "Exact.Example.ORG."}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want bool
	}{
		{"aiquickdraw.com", true},
		{"file.aiquickdraw.com", true},
		{"TEMPFILE.AiQuickDraw.com", true},
		{"a.b.aiquickdraw.com", true},
		{"file.aiquickdraw.com.", true},
		{"evilaiquickdraw.com", false},
		{"aiquickdraw.com.evil.net", false},
		{"exact.example.org", true},
		{"sub.exact.example.org", false},
		{"example.org", false},
	}
	for _, tt := range tests {
		if got := c.hostAllowed(tt.host); got != tt.want {
			t.Errorf("hostAllowed(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}
