package runtime

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
)

// pinning is how the benchmarks of this file keep the load generator off the runtime's CPU: with two
// or more CPUs and taskset on the PATH, the process measured (the runtime, or the bare net/http
// ceiling) runs on CPU 0 and wrk on CPU 1. It returns the two command prefixes and a sentence saying
// what was done, for the log.
func pinning() (server, generator []string, how string) {
	ts, err := exec.LookPath("taskset")
	if goruntime.NumCPU() < 2 || err != nil {
		return nil, nil, fmt.Sprintf("not pinned (%d CPUs, taskset: %v): the generator shares the runtime's CPUs", goruntime.NumCPU(), err)
	}
	return []string{ts, "-c", "0"}, []string{ts, "-c", "1"}, "pinned with taskset: the measured server on CPU 0, wrk on CPU 1"
}

// BenchmarkFairShare measures app B (a page of 20, wrk with 4 connections) alone, then while app A
// (no limits) is flooded by wrk with 64 connections, in one runtime, then alone again; "alone" is
// the mean of the two runs alone, since one run on a busy or virtual machine can be a third off.
// Goal: B keeps at least 40 % of its throughput alone, and its p99 is at most 3 times its p99 alone.
// Issue figures before fair admission, same method: 15,454 req/s alone, 871 (5.6 %) flooded; p99
// 1.94 -> 8.55 ms.
//
// It runs twice: with the runtime's defaults, under which a page asked for again is answered from
// what the app kept of the last read ("kept"), and with --keep-answers=false, under which every
// request reads the database ("nothing-kept").
func BenchmarkFairShare(b *testing.B) {
	wrk := wrkPath(b)
	srv, gen, how := pinning()
	const each = 5 * time.Second
	b.Logf("%s", how)
	for _, v := range keptVariants {
		b.Run(v.name, func(b *testing.B) {
			rp := startRuntimeOn(b, neverIdle, srv, v.flags...)
			defer rp.stop()
			rp.createApps(b, []string{"app-a", "app-b"}, benchSpec(0), 2)
			rp.seedCustomers(b, "app-a", 1000)
			rp.seedCustomers(b, "app-b", 1000)
			aURL := rp.appURL("app-a", "/api/customers?limit=20")
			bURL := rp.appURL("app-b", "/api/customers?limit=20")
			rp.mustGet(b, aURL)
			rp.mustGet(b, bURL)
			rp.data.CloseIdleConnections()

			before, err := runWrkOn(b.Context(), gen, wrk, bURL, 4, 1, each)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(b.Context())
			defer cancel()
			var flood wrkResult
			var floodErr error
			var wg sync.WaitGroup
			wg.Go(func() { flood, floodErr = runWrkOn(ctx, gen, wrk, aURL, 64, 1, each+2*time.Second) })
			time.Sleep(time.Second)
			shared, err := runWrkOn(b.Context(), gen, wrk, bURL, 4, 1, each)
			if err != nil {
				b.Fatal(err)
			}
			wg.Wait()
			if floodErr != nil {
				b.Fatal(floodErr)
			}
			after, err := runWrkOn(b.Context(), gen, wrk, bURL, 4, 1, each)
			if err != nil {
				b.Fatal(err)
			}
			if n := before.non2xx + shared.non2xx + after.non2xx; n > 0 {
				b.Fatalf("B got %d non-2xx answers", n)
			}
			alone := wrkResult{
				reqPerSec: (before.reqPerSec + after.reqPerSec) / 2,
				p50:       (before.p50 + after.p50) / 2,
				p99:       (before.p99 + after.p99) / 2,
			}
			keep := shared.reqPerSec / alone.reqPerSec
			tail := float64(shared.p99) / float64(alone.p99)
			b.ReportMetric(alone.reqPerSec, "req/s-B-alone")
			b.ReportMetric(shared.reqPerSec, "req/s-B-flooded")
			b.ReportMetric(flood.reqPerSec, "req/s-A-flood")
			b.ReportMetric(keep, "share-kept")
			b.ReportMetric(ms(alone.p99), "ms-p99-B-alone")
			b.ReportMetric(ms(shared.p99), "ms-p99-B-flooded")
			b.ReportMetric(tail, "ratio-p99")
			b.Logf("%s: B alone: %.0f req/s (%.0f before the flood, %.0f after), p50 %.2f ms, p99 %.2f ms; B while A is flooded by 64 connections: %.0f req/s (%.1f %% kept, goal >= 40 %%: %s), "+
				"p50 %.2f ms, p99 %.2f ms (%.2fx, goal <= 3x: %s); A answered %.0f req/s over 7 s, the first and last second alone (%d non-2xx); load average %s",
				v.name, alone.reqPerSec, before.reqPerSec, after.reqPerSec, ms(alone.p50), ms(alone.p99), shared.reqPerSec, 100*keep, verdict(keep >= 0.4),
				ms(shared.p50), ms(shared.p99), tail, verdict(tail <= 3), flood.reqPerSec, flood.non2xx, loadAverage())
		})
	}
}

// keptVariants are the two ways the throughput benchmarks run the runtime: with its defaults, and
// with --keep-answers=false, so that a URL asked for again is read from the database every time.
var keptVariants = []struct {
	name  string
	flags []string
}{
	{"kept", nil},
	{"nothing-kept", []string{"--keep-answers=false"}},
}

// BenchmarkDataAPICeiling measures the data API (a page of 20 of 1,000 records, and one record by
// id; wrk with 16 connections) against a bare net/http server answering the same bytes, pinned the
// same way, in the same run. Goal: at least 0.35 of the ceiling for the page and 0.6 for one record.
// It runs with the runtime's defaults ("kept": a URL asked for again is answered from what the app
// kept of the last read) and with --keep-answers=false ("nothing-kept": every request reads the
// database).
func BenchmarkDataAPICeiling(b *testing.B) {
	wrk := wrkPath(b)
	srv, gen, how := pinning()
	paths := []struct{ name, path string }{
		{"page20", "/api/customers?limit=20"},
		{"byID", "/api/customers/500"},
	}
	const conns, threads, dur = 16, 1, 5 * time.Second
	b.Logf("%s", how)
	goal := map[string]float64{"page20": 0.35, "byID": 0.6}
	for _, v := range keptVariants {
		rp := startRuntimeOn(b, neverIdle, srv, v.flags...)
		rp.createApps(b, []string{"shop"}, benchSpec(0), 1)
		rp.seedCustomers(b, "shop", 1000)
		dir := b.TempDir()
		args := []string{"-addr-file", filepath.Join(dir, "addr")}
		for _, p := range paths {
			body := rp.body(b, rp.appURL("shop", p.path))
			file := filepath.Join(dir, p.name+".json")
			if err := os.WriteFile(file, body, 0o600); err != nil {
				b.Fatal(err)
			}
			args = append(args, "/"+p.name+"="+file)
		}
		ceiling := startCeiling(b, srv, args, filepath.Join(dir, "addr"))
		rp.data.CloseIdleConnections()
		for _, p := range paths {
			name := p.name + "-" + v.name
			b.Run(name, func(b *testing.B) {
				ours := mustWrkOn(b, gen, wrk, rp.appURL("shop", p.path), conns, threads, dur, false)
				bare := mustWrkOn(b, gen, wrk, "http://"+ceiling+"/"+p.name, conns, threads, dur, false)
				ratio := ours.reqPerSec / bare.reqPerSec
				b.ReportMetric(ours.reqPerSec, "req/s")
				b.ReportMetric(bare.reqPerSec, "req/s-ceiling")
				b.ReportMetric(ratio, "ratio")
				b.ReportMetric(ms(ours.p99), "ms-p99")
				b.Logf("%s: runtime %.0f req/s (p50 %.2f ms, p99 %.2f ms), bare net/http with the same bytes %.0f req/s; ratio %.2f (goal >= %.2f: %s); load average %s",
					name, ours.reqPerSec, ms(ours.p50), ms(ours.p99), bare.reqPerSec, ratio, goal[p.name], verdict(ratio >= goal[p.name]), loadAverage())
			})
		}
		rp.stop()
	}
}

// body returns the answer to a GET of url, which must be 200.
func (rp *runtimeProc) body(tb testing.TB, url string) []byte {
	tb.Helper()
	resp, err := rp.data.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}

// startCeiling builds and starts the ceiling command and returns its address; it is killed in a Cleanup.
func startCeiling(tb testing.TB, prefix, args []string, addrFile string) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "ceiling")
	build := exec.Command("go", "build", "-o", bin, "./ceiling")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("build ceiling: %v\n%s", err, out)
	}
	argv := append(append(append([]string{}, prefix...), bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatal("ceiling did not start")
	return ""
}

// BenchmarkDensity10000AwakeInTurn wakes 10,000 apps one after another (one request each, 8
// clients) in one runtime whose apps never hibernate for being idle, so that only the runtime's cap
// on open databases (--max-open-databases, derived from the descriptor limit) keeps them from
// exhausting descriptors; it measures RSS and open descriptors at the end and at their peak. Goal: at
// most 1 GB, no descriptor exhausted, no app in error.
func BenchmarkDensity10000AwakeInTurn(b *testing.B) {
	const n = 10000
	rp := startRuntime(b, neverIdle)
	names := appNames(n)
	rp.createApps(b, names, benchSpec(0), createWorkers)
	var peakFDs int
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
				if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", rp.cmd.Process.Pid)); err == nil {
					peakFDs = max(peakFDs, len(ents))
				}
			}
		}
	})
	start := time.Now()
	rp.touchApps(b, names, createWorkers)
	woke := time.Since(start)
	close(done)
	wg.Wait()
	mem := rp.memory(b)
	b.StopTimer()
	errs := 0
	for _, a := range rp.appStats(b) {
		if a.Status != api.StatusRunning {
			errs++
		}
	}
	if errs > 0 {
		b.Fatalf("%d apps are not running after waking", errs)
	}
	b.ReportMetric(megabytes(mem.rss), "MB-rss")
	b.ReportMetric(megabytes(mem.hwm), "MB-peak")
	b.ReportMetric(float64(peakFDs), "fds-peak")
	b.ReportMetric(woke.Seconds(), "s-wake-all")
	b.Logf("10,000 apps woken in turn in %.1fs: RSS %.1f MB, peak %.1f MB (goal <= 1,000 MB: %s); at most %d descriptors open; every app running; load average %s",
		woke.Seconds(), megabytes(mem.rss), megabytes(mem.hwm), verdict(megabytes(mem.hwm) <= 1000), peakFDs, loadAverage())
}
