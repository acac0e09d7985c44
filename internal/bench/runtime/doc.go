// Package runtime benchmarks `appfleet runtime serve` from the outside: it builds the appfleet binary
// once, starts real runtime processes on temporary data dirs, and speaks to them over loopback HTTP
// only (the management API through apphost/api, app traffic as plain HTTP), so that every figure is
// what a client of a deployed runtime would see.
//
// The package holds benchmarks only. They run with -bench and never as part of a plain `go test`:
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./internal/bench/runtime/
//
// Each benchmark measures one claim of the runtime against its target and beside its baseline, in
// one run, and reports the figures as custom metrics (MB-rss, ms-p99, req/s, ...); a log line under
// each result states the target and whether it was met. docs/benchmarks.md records the figures.
//
// Benchmarks that need wrk (the throughput figures) skip, saying so, when wrk is not on PATH. Those
// of fairshare_test.go pin the process measured to CPU 0 and wrk to CPU 1 with taskset when the machine
// has two or more CPUs, and log whether they did; BenchmarkDataAPICeiling also builds and runs
// ./ceiling, a bare net/http server answering the same bytes, as the measure of what is the runtime's own cost.
// APPFLEET_BIN, when set, names a prebuilt appfleet binary to use instead of building ./cmd/appfleet.
//
// The package must never talk to anything but loopback, never reuse a data dir between benchmarks,
// and never leave a runtime process behind: every process it starts is killed in a Cleanup.
package runtime
