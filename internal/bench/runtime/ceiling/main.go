// Command ceiling is the bare net/http server the runtime's data API is measured against: it answers
// every GET of a path it was given with that path's bytes, as the runtime does (application/json,
// Content-Length), and does nothing else, so that what separates the runtime's figure from its figure
// is the runtime's own work.
//
//	ceiling -addr-file F PATH=FILE...
//
// It listens on a free loopback port and writes the address to F. It must never be more than that:
// a benchmark's ceiling that did extra work would flatter the runtime.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 3 || args[0] != "-addr-file" {
		return fmt.Errorf("usage: ceiling -addr-file FILE PATH=FILE...")
	}
	bodies := map[string][]byte{}
	for _, a := range args[2:] {
		path, file, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("%q: want PATH=FILE", a)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		bodies[path] = b
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if err := os.WriteFile(args[1], []byte(ln.Addr().String()), 0o600); err != nil {
		return err
	}
	ctype := []string{"application/json"}
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h["Content-Type"] = ctype
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
		_, _ = w.Write(b)
	}))
}
