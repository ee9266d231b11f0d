// Package download fetches large files over HTTP(S) safely: only from
// allowed hosts and never from loopback/private/link-local addresses
// (checked on the resolved IP when connecting, and again on every
// redirect), streamed to disk with flat memory, hashed on the way, resumed
// with Range after an interruption, and renamed into place only when
// complete and verified, so no reader ever sees half a file.
package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config configures a Client. Zero durations and counts take the defaults
// noted on each field.
type Config struct {
	// AllowedHosts are the hosts files may come from: exact names ("a.com"),
	// IP literals (IPv6 without brackets) or "*.a.com" for any subdomain of
	// a.com (not a.com itself). Compared case-insensitively, ports ignored.
	// At least one is required.
	AllowedHosts []string
	// AllowPrivateNetworks permits plain http and loopback/private/
	// link-local targets: for tests and demos only.
	AllowPrivateNetworks bool
	// MaxBytes is the largest file accepted (default 16 GiB).
	MaxBytes int64
	// ConnectTimeout bounds the TCP connect (default 10s).
	ConnectTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake (default 10s).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers (default 30s).
	ResponseHeaderTimeout time.Duration
	// IdleReadTimeout fails an attempt when no body byte arrives for this
	// long (default 60s). There is deliberately no total timeout: a
	// multi-GiB file may take as long as it takes while bytes flow.
	IdleReadTimeout time.Duration
	// MaxRedirects is the most redirects followed (default 5).
	MaxRedirects int
	// Attempts is how many times Fetch tries in-process on transient
	// trouble, resuming each time (default 4).
	Attempts int
	// RetryBackoff is the first wait between attempts (default 1s),
	// doubling each time and capped at MaxBackoff.
	RetryBackoff time.Duration
	// MaxBackoff caps one wait between attempts, including a server's
	// Retry-After (default 20s, so the default attempts fit in about a
	// minute). A longer Retry-After ends the in-process attempts at once
	// and is reported in Error.RetryAfter for the caller's own back-off.
	MaxBackoff time.Duration
}

const (
	defaultMaxBytes = 16 << 30
	bufferSize      = 256 << 10
	partialDir      = ".partial"
	progressEvery   = 200 * time.Millisecond
)

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ConnectTimeout, 10*time.Second)
	def(&c.TLSHandshakeTimeout, 10*time.Second)
	def(&c.ResponseHeaderTimeout, 30*time.Second)
	def(&c.IdleReadTimeout, 60*time.Second)
	def(&c.RetryBackoff, time.Second)
	def(&c.MaxBackoff, 20*time.Second)
	if c.MaxBytes <= 0 {
		c.MaxBytes = defaultMaxBytes
	}
	if c.MaxRedirects <= 0 {
		c.MaxRedirects = 5
	}
	if c.Attempts <= 0 {
		c.Attempts = 4
	}
}

// Client downloads files. It is safe for concurrent use.
type Client struct {
	cfg       Config
	hosts     []hostRule
	blocked   []blockedRange
	transport *http.Transport
	http      *http.Client
	// bufs recycles copy buffers (*[]byte of bufferSize) across downloads:
	// allocating and zeroing them per file costs as much as a small file.
	bufs sync.Pool
	// exempt, when set (tests only), lets chosen addresses past the
	// address check, so SSRF behaviour can be exercised against loopback
	// servers.
	exempt func(netip.AddrPort) bool
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	hosts, err := parseHostRules(cfg.AllowedHosts)
	if err != nil {
		return nil, fmt.Errorf("configuring download client: %w", err)
	}
	c := &Client{cfg: cfg, hosts: hosts, blocked: blockedRanges()}
	c.bufs.New = func() any {
		b := make([]byte, bufferSize)
		return &b
	}
	dialer := &net.Dialer{
		Timeout:   cfg.ConnectTimeout,
		KeepAlive: 30 * time.Second,
		Control:   c.controlDial,
	}
	c.transport = &http.Transport{
		Proxy:                 nil, // never route around the address check
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		// Bytes must arrive as stored: transparent gzip would break
		// Content-Length, Range offsets and the hash.
		DisableCompression:  true,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
	}
	c.http = &http.Client{Transport: c.transport, CheckRedirect: c.checkRedirect}
	return c, nil
}

// controlDial runs after the socket is created and before it connects, on
// the address DNS actually returned: the one place where a rebinding DNS
// answer cannot slip past the check.
func (c *Client) controlDial(network, address string, _ syscall.RawConn) error {
	if c.cfg.AllowPrivateNetworks {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return permanent(fmt.Sprintf("refused address %q: not an IP address", address), err)
	}
	if c.exempt != nil && c.exempt(ap) {
		return nil
	}
	if why := c.checkAddr(ap.Addr()); why != "" {
		return permanent(fmt.Sprintf("refused address %s: %s", ap.Addr(), why), nil)
	}
	return nil
}

func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > c.cfg.MaxRedirects {
		return permanent(fmt.Sprintf("too many redirects (more than %d)", c.cfg.MaxRedirects), nil)
	}
	if e := c.checkURL(req.URL); e != nil {
		e.Reason = "redirect " + e.Reason
		return e
	}
	return nil
}

// Request names what to fetch and where to put it.
type Request struct {
	// URL is the http(s) URL of the file.
	URL string
	// Dir is the directory of the final file, created if absent.
	Dir string
	// Name is the final file's name: a plain name, no separators or "..",
	// not starting with "." and not ending in ".json" or ".tmp" (reserved
	// for the partial file's sidecar).
	Name string
	// Verify, when set, checks the complete temporary file before it is
	// renamed into place; an error fails the download permanently and
	// leaves no file behind. The file is positioned at its start.
	Verify func(f *os.File) error
	// Progress, when set, is called from Fetch's goroutine as bytes
	// arrive (at most every 200ms, and once at the end); total is -1 when
	// unknown.
	Progress func(done, total int64)
}

// Result describes a completed download.
type Result struct {
	// Path is the final file's path.
	Path string
	// Bytes is the file size.
	Bytes int64
	// SHA256 is the hex SHA-256 of the whole file.
	SHA256 string
	// ContentType is the server's Content-Type.
	ContentType string
	// Resumed reports that bytes from an earlier, interrupted attempt
	// (in this process or an earlier one) were kept.
	Resumed bool
}

// Fetch downloads req.URL to req.Dir/req.Name. Every error is an *Error;
// IsPermanent tells whether retrying later can help. Transient trouble is
// retried up to Config.Attempts times, resuming each time; the partial file
// is kept after a transient failure so a later Fetch resumes it, and
// removed after a permanent one.
func (c *Client) Fetch(ctx context.Context, req Request) (Result, error) {
	if err := checkName(req.Name); err != nil {
		return Result{}, err
	}
	if req.Dir == "" {
		return Result{}, permanent("invalid request: empty directory", nil)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return Result{}, permanent("invalid URL", err)
	}
	if e := c.checkURL(u); e != nil {
		return Result{}, e
	}
	p, err := openPartial(req.Dir, req.Name)
	if err != nil {
		return Result{}, err
	}
	defer p.close()

	f := &fetch{c: c, req: req, p: p, hash: sha256.New()}
	res, err := f.run(ctx)
	if err != nil {
		if IsPermanent(err) {
			p.remove()
		}
		return Result{}, err
	}
	return res, nil
}

func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, `/\`+"\x00") || strings.Contains(name, "..") ||
		strings.HasPrefix(name, ".") {
		return permanent(fmt.Sprintf("invalid file name %q: must be a plain name", name), nil)
	}
	// The sidecar of X is .partial/X.json (written via X.json.tmp): a name
	// ending so could collide with another download's sidecar.
	if strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".tmp") {
		return permanent(fmt.Sprintf("invalid file name %q: .json and .tmp names are reserved", name), nil)
	}
	return nil
}

// fetch is the state of one Fetch call across its attempts.
type fetch struct {
	c       *Client
	req     Request
	p       *partial
	hash    hash.Hash
	hashed  int64 // bytes of the partial file fed to hash
	resumed bool
	ctype   string
}

func (f *fetch) run(ctx context.Context) (Result, error) {
	var last *Error
	backoff := f.c.cfg.RetryBackoff
	for attempt := 1; attempt <= f.c.cfg.Attempts; attempt++ {
		if attempt > 1 {
			wait := min(backoff, f.c.cfg.MaxBackoff)
			backoff = min(backoff*2, f.c.cfg.MaxBackoff)
			if last.RetryAfter > f.c.cfg.MaxBackoff {
				return Result{}, last // the server wants a longer pause than we wait in-process
			}
			wait = max(wait, last.RetryAfter)
			if last.Reason == reasonRestart {
				wait = 0
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return Result{}, transient("cancelled while waiting to retry", ctx.Err())
			case <-t.C:
			}
		}
		res, err := f.attempt(ctx)
		if err == nil {
			return res, nil
		}
		if err.Permanent || ctx.Err() != nil {
			return Result{}, err
		}
		last = err
	}
	if last.Reason == reasonRestart {
		last = transient("server kept changing the file during resume", last)
	}
	return Result{}, &Error{
		Reason:     fmt.Sprintf("giving up after %d attempts", f.c.cfg.Attempts),
		RetryAfter: last.RetryAfter,
		Err:        last,
	}
}

// reasonRestart marks an attempt that found the partial file unusable and
// truncated it: the next attempt starts at once.
const reasonRestart = "partial file discarded, restarting from zero"

func (f *fetch) attempt(ctx context.Context) (Result, *Error) {
	offset, err := f.p.size()
	if err != nil {
		return Result{}, transient("reading partial file", err)
	}
	meta := f.p.readMeta()
	validator := meta.validator()
	if offset > 0 && (meta.URL != f.req.URL || validator == "") {
		// Bytes of unknown origin, or nothing to prove the file is
		// unchanged: do not stitch them to new bytes.
		if e := f.restart(); e != nil {
			return Result{}, e
		}
		offset = 0
	}
	if offset > 0 && meta.Total >= 0 && offset > meta.Total {
		if e := f.restart(); e != nil {
			return Result{}, e
		}
		offset = 0
	}
	if f.hashed != offset {
		if e := f.rehash(offset); e != nil {
			return Result{}, e
		}
	}
	if offset > 0 && offset == meta.Total {
		// Complete already: an earlier run stopped between the last byte
		// and the rename.
		f.resumed = true
		f.ctype = meta.ContentType
		return f.finish(offset)
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hreq, err := http.NewRequestWithContext(actx, http.MethodGet, f.req.URL, nil)
	if err != nil {
		return Result{}, permanent("invalid URL", err)
	}
	hreq.Header.Set("Accept-Encoding", "identity")
	if offset > 0 {
		hreq.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		hreq.Header.Set("If-Range", validator)
	}
	resp, err := f.c.http.Do(hreq)
	if err != nil {
		return Result{}, classifyTransport(ctx, err)
	}
	defer func() { _ = resp.Body.Close() }()

	var total int64
	switch {
	case resp.StatusCode == http.StatusOK:
		if offset > 0 {
			// Range ignored, or If-Range found the file changed.
			if e := f.restart(); e != nil {
				return Result{}, e
			}
			offset = 0
		}
		total = resp.ContentLength
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		start, end, size, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			// Unusable for resuming (e.g. unknown size "/*"): start over.
			if e := f.restart(); e != nil {
				return Result{}, e
			}
			return Result{}, transient(reasonRestart, err)
		}
		changed := (meta.Total >= 0 && size != meta.Total) ||
			(meta.ETag != "" && resp.Header.Get("ETag") != "" && resp.Header.Get("ETag") != meta.ETag)
		if start != offset || end != size-1 || changed {
			if e := f.restart(); e != nil {
				return Result{}, e
			}
			return Result{}, transient(reasonRestart, fmt.Errorf("asked for bytes %d- of %d, got %d-%d/%d", offset, meta.Total, start, end, size))
		}
		total = size
		f.resumed = true
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		if e := f.restart(); e != nil {
			return Result{}, e
		}
		return Result{}, transient(reasonRestart, fmt.Errorf("server answered %s to bytes=%d-", resp.Status, offset))
	default:
		return Result{}, classifyStatus(resp)
	}
	if total > f.c.cfg.MaxBytes {
		return Result{}, permanent(fmt.Sprintf("too large: %d bytes, limit %d", total, f.c.cfg.MaxBytes), nil)
	}
	f.ctype = resp.Header.Get("Content-Type")
	if offset == 0 {
		meta = partialMeta{
			URL:          f.req.URL,
			ETag:         strongETag(resp.Header.Get("ETag")),
			LastModified: resp.Header.Get("Last-Modified"),
			ContentType:  f.ctype,
			Total:        total,
		}
		if err := f.p.writeMeta(meta); err != nil {
			return Result{}, transient("writing partial file metadata", err)
		}
	}

	// Idle-read timeout: every byte that arrives pushes the deadline back.
	idle := f.c.cfg.IdleReadTimeout
	timer := time.AfterFunc(idle, func() { cancel(errIdle) })
	defer timer.Stop()
	body := &idleReader{r: resp.Body, timer: timer, d: idle}

	n, e := f.copy(body, offset, total)
	if e != nil {
		if errors.Is(context.Cause(actx), errIdle) && ctx.Err() == nil {
			return Result{}, transient(fmt.Sprintf("no data for %s after %d bytes", idle, n), errIdle)
		}
		if e.Err != nil && ctx.Err() == nil && !e.Permanent {
			e = transient(fmt.Sprintf("connection lost after %d bytes", n), e.Err)
		}
		return Result{}, e
	}
	if total >= 0 && n != total {
		return Result{}, transient(fmt.Sprintf("short body: got %d of %d bytes", n, total), io.ErrUnexpectedEOF)
	}
	return f.finish(n)
}

var errIdle = errors.New("idle read timeout")

// copy streams body into the partial file at offset, hashing as it goes,
// and returns the file size reached.
//
// Hashing costs about as much CPU as receiving and writing together, so it
// runs on a goroutine of its own (another core) fed with the buffers already
// written, a few buffers deep: memory stays flat (hashBuffers × bufferSize)
// whatever the file size. Writeback of what was written is started as the
// download goes (startWriteback), so the final fsync waits for little.
// On return every written byte has been hashed: f.hashed is the size reached.
func (f *fetch) copy(body io.Reader, offset, total int64) (int64, *Error) {
	if _, err := f.p.f.Seek(offset, io.SeekStart); err != nil {
		return offset, transient("seeking partial file", err)
	}
	h := newHasher(f.hash, &f.c.bufs)
	done := offset
	defer func() {
		h.close()
		f.hashed = done
	}()
	flushed := offset
	var last time.Time // zero: the first bytes are reported at once
	report := func(force bool) {
		if f.req.Progress != nil && (force || time.Since(last) >= progressEvery) {
			last = time.Now()
			f.req.Progress(done, total)
		}
	}
	for {
		buf := h.buffer()
		n, rerr := fill(body, buf)
		if n > 0 {
			if done+int64(n) > f.c.cfg.MaxBytes {
				h.release(buf)
				return done, permanent(fmt.Sprintf("too large: more than %d bytes", f.c.cfg.MaxBytes), nil)
			}
			if _, err := f.p.f.Write(buf[:n]); err != nil {
				h.release(buf)
				return done, transient("writing partial file", err)
			}
			h.submit(buf[:n])
			done += int64(n)
			if done-flushed >= writebackEvery {
				startWriteback(f.p.f, flushed, done-flushed)
				flushed = done
			}
			report(false)
		} else {
			h.release(buf)
		}
		if errors.Is(rerr, io.EOF) {
			report(true)
			return done, nil
		}
		if rerr != nil {
			return done, &Error{Reason: "reading body", Err: rerr}
		}
	}
}

// fill reads into buf until it is full, the body ends or fails: fewer,
// larger writes and hand-offs to the hashing goroutine than one per read
// (a socket read returns what has arrived, often a few dozen KiB).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// hashBuffers is how many buffers circulate between the copy loop and the
// hashing goroutine.
const hashBuffers = 4

// writebackEvery is how many written bytes start the kernel's writeback of
// them (startWriteback), so dirty pages do not pile up for the final fsync.
const writebackEvery = 32 << 20

// hasher feeds buffers to a hash on its own goroutine and hands them back.
type hasher struct {
	h    hash.Hash
	pool *sync.Pool
	free chan []byte
	work chan []byte
	done chan struct{}
}

// newHasher starts a hasher with hashBuffers buffers from pool (*[]byte of
// bufferSize), which close returns.
func newHasher(h hash.Hash, pool *sync.Pool) *hasher {
	hs := &hasher{h: h, pool: pool, free: make(chan []byte, hashBuffers), work: make(chan []byte, hashBuffers), done: make(chan struct{})}
	for range hashBuffers {
		hs.free <- *pool.Get().(*[]byte)
	}
	go func() {
		defer close(hs.done)
		for b := range hs.work {
			hs.h.Write(b)
			hs.free <- b[:cap(b)]
		}
	}()
	return hs
}

// buffer returns a free buffer, waiting for the hash to catch up if need be.
func (hs *hasher) buffer() []byte { return <-hs.free }

// release returns a buffer that was not submitted.
func (hs *hasher) release(b []byte) { hs.free <- b[:cap(b)] }

// submit hashes b (in order) and then frees it.
func (hs *hasher) submit(b []byte) { hs.work <- b }

// close waits until everything submitted is hashed and returns the buffers
// to the pool; every buffer must have been submitted or released.
func (hs *hasher) close() {
	close(hs.work)
	<-hs.done
	for range hashBuffers {
		b := <-hs.free
		hs.pool.Put(&b)
	}
}

func (f *fetch) finish(size int64) (Result, *Error) {
	if err := f.p.f.Sync(); err != nil {
		return Result{}, transient("syncing partial file", err)
	}
	if f.req.Verify != nil {
		if _, err := f.p.f.Seek(0, io.SeekStart); err != nil {
			return Result{}, transient("seeking partial file", err)
		}
		if err := f.req.Verify(f.p.f); err != nil {
			return Result{}, permanent("verification failed", err)
		}
	}
	final, err := f.p.commit()
	if err != nil {
		return Result{}, transient("moving file into place", err)
	}
	return Result{
		Path:        final,
		Bytes:       size,
		SHA256:      hex.EncodeToString(f.hash.Sum(nil)),
		ContentType: f.ctype,
		Resumed:     f.resumed,
	}, nil
}

// restart empties the partial file so the download starts over.
func (f *fetch) restart() *Error {
	if err := f.p.f.Truncate(0); err != nil {
		return transient("truncating partial file", err)
	}
	f.hash.Reset()
	f.hashed = 0
	f.resumed = false
	return nil
}

// rehash feeds the first n bytes of the partial file to a fresh hash.
func (f *fetch) rehash(n int64) *Error {
	f.hash.Reset()
	f.hashed = 0
	if _, err := f.p.f.Seek(0, io.SeekStart); err != nil {
		return transient("seeking partial file", err)
	}
	buf := make([]byte, bufferSize)
	if _, err := io.CopyBuffer(f.hash, io.LimitReader(f.p.f, n), buf); err != nil {
		return transient("hashing partial file", err)
	}
	f.hashed = n
	return nil
}

// idleReader pushes the idle timer back on every read that returns bytes.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(r.d)
	}
	return n, err
}

func classifyTransport(ctx context.Context, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e // refusal from the dialer or the redirect check
	}
	if ctx.Err() != nil {
		return transient("cancelled", ctx.Err())
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return transient("timeout", err)
	}
	return transient("connection failed", err)
}

func classifyStatus(resp *http.Response) *Error {
	reason := fmt.Sprintf("server answered %s", resp.Status)
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code >= 500 || code == http.StatusRequestTimeout:
		e := transient(reason, nil)
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return e
	default:
		return permanent(reason, nil)
	}
}

// parseRetryAfter reads delay-seconds or an HTTP date; zero when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// parseContentRange parses "bytes start-end/size" (size must be known).
func parseContentRange(v string) (start, end, size int64, err error) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("content-range %q: not a byte range", v)
	}
	rng, sz, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, fmt.Errorf("content-range %q: no size", v)
	}
	s, e, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, fmt.Errorf("content-range %q: no range", v)
	}
	if start, err = strconv.ParseInt(s, 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("content-range %q: %w", v, err)
	}
	if end, err = strconv.ParseInt(e, 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("content-range %q: %w", v, err)
	}
	if size, err = strconv.ParseInt(sz, 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("content-range %q: size: %w", v, err)
	}
	if start < 0 || end < start || size <= end {
		return 0, 0, 0, fmt.Errorf("content-range %q: inconsistent", v)
	}
	return start, end, size, nil
}

// strongETag returns etag if it is a strong validator (usable in If-Range).
func strongETag(etag string) string {
	if strings.HasPrefix(etag, "W/") {
		return ""
	}
	return etag
}

// finalPath is where the finished file lives.
func finalPath(dir, name string) string { return filepath.Join(dir, name) }
