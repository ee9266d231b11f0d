package healthcheck

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRun(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })

	// A port that was listening a moment ago and is now closed: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	tests := []struct {
		name string
		url  string
		want int
	}{
		{"2xx is healthy", srv.URL + "/ok", 0},
		{"5xx is unhealthy", srv.URL + "/down", 1},
		{"404 is unhealthy", srv.URL + "/missing", 1},
		{"redirect is not followed", srv.URL + "/moved", 1},
		{"no answer within the timeout", srv.URL + "/slow", 1},
		{"connection refused", closed, 1},
		{"malformed url", "http://[::1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, want := Run(tt.url), tt.want; got != want {
				t.Errorf("Run(%q) = %d, want %d", tt.url, got, want)
			}
		})
	}
}
