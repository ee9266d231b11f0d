// Command static serves a directory over HTTP on loopback (Go's file server:
// sendfile, Range, Content-Length), the download benchmark's source, so the
// server costs the same little for curl and for veo4k's download path.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18093", "listen address")
	dir := flag.String("dir", ".", "directory to serve")
	flag.Parse()
	srv := &http.Server{Addr: *addr, Handler: http.FileServer(http.Dir(*dir)), ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "static:", err)
		os.Exit(1)
	}
}
