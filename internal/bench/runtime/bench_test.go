package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
)

// Figures given by the issue for the work these benchmarks repeat, measured on the same machines.
const (
	pocketBasePageRPS   = 1700 // PocketBase v0.36.8, a page of 20 from 1,000 records, 16 connections
	pocketBaseByIDLoRPS = 3700 // PocketBase v0.36.8, one record by id: low end of the range
	pocketBaseByIDHiRPS = 7300 // and high end
)

// neverIdle is an idle timeout long enough that no app hibernates during a benchmark.
const neverIdle = time.Hour

// createWorkers is the number of concurrent management clients that create apps: a handful, as a
// control plane applying a fleet would use.
const createWorkers = 8

func appNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = appName(i)
	}
	return out
}

// stop kills the runtime now rather than at Cleanup, so it stops sharing the cores with what follows.
func (rp *runtimeProc) stop() { _ = rp.cmd.Process.Kill() }

// oneAppRSS is the baseline for density: the RSS of a runtime holding one app that has served one
// request, which is what each process would cost if every app had a process of its own.
func oneAppRSS(b *testing.B) procMem {
	b.Helper()
	rp := startRuntime(b, neverIdle)
	defer rp.stop()
	rp.createApps(b, []string{"solo"}, benchSpec(0), 1)
	rp.touchApps(b, []string{"solo"}, 1)
	return rp.memory(b)
}

// BenchmarkDensity1000Apps measures the RSS of one runtime with 1,000 running apps, each with its
// own SQLite database and two collections and each served one request. Target: at most 200 MB.
func BenchmarkDensity1000Apps(b *testing.B) {
	const n = 1000
	one := oneAppRSS(b)
	rp := startRuntime(b, neverIdle)
	names := appNames(n)
	rp.createApps(b, names, benchSpec(0), createWorkers)
	rp.touchApps(b, names, createWorkers)
	// Measured before anything else is asked of the runtime: listing 1,000 apps allocates too.
	mem := rp.memory(b)
	b.StopTimer()

	stats := rp.appStats(b)
	open := 0
	for _, name := range names {
		a := stats[name]
		if a.Status != api.StatusRunning || a.Stats.Requests < 1 {
			b.Fatalf("app %s: status %s, %d requests; want running with one served", name, a.Status, a.Stats.Requests)
		}
		if !a.Stats.Hibernating {
			open++
		}
	}
	if open != n {
		b.Fatalf("%d of %d apps have their database open; want all of them", open, n)
	}
	ratio := float64(n) * float64(one.rss) / float64(mem.rss)
	b.ReportMetric(megabytes(mem.rss), "MB-rss")
	b.ReportMetric(megabytes(mem.hwm), "MB-peak")
	b.ReportMetric(megabytes(one.rss), "MB-rss-1app")
	b.ReportMetric(float64(mem.rss-one.rss)/float64(n-1)/1e3, "kB/extra-app")
	b.ReportMetric(ratio, "x-vs-process-per-app")
	b.Logf("1,000 running apps: RSS %.1f MB (target <= 200 MB: %s), peak %.1f MB; one app alone: %.1f MB; "+
		"a process per app would take %.1fx as much; load average %s",
		megabytes(mem.rss), verdict(megabytes(mem.rss) <= 200), megabytes(mem.hwm), megabytes(one.rss), ratio, loadAverage())
}

// BenchmarkDensity10000Registered100Active measures the RSS of one runtime with 10,000 registered
// apps of which 100 have served a request. Target: at most 300 MB.
func BenchmarkDensity10000Registered100Active(b *testing.B) {
	const n, active = 10000, 100
	one := oneAppRSS(b)
	rp := startRuntime(b, neverIdle)
	names := appNames(n)
	created := rp.createApps(b, names, benchSpec(0), createWorkers)
	// Every 100th app, so the active ones are spread over the registry rather than its first rows.
	var actives []string
	for i := 0; i < n; i += n / active {
		actives = append(actives, names[i])
	}
	rp.touchApps(b, actives, createWorkers)
	mem := rp.memory(b)
	b.StopTimer()

	stats := rp.appStats(b)
	if len(stats) != n {
		b.Fatalf("the runtime lists %d apps; want %d", len(stats), n)
	}
	open := 0
	for _, a := range stats {
		if a.Status != api.StatusRunning {
			b.Fatalf("app %s is %s; want running", a.Name, a.Status)
		}
		if !a.Stats.Hibernating {
			open++
		}
	}
	ratio := float64(n) * float64(one.rss) / float64(mem.rss)
	b.ReportMetric(megabytes(mem.rss), "MB-rss")
	b.ReportMetric(megabytes(mem.hwm), "MB-peak")
	b.ReportMetric(megabytes(one.rss), "MB-rss-1app")
	b.ReportMetric(ratio, "x-vs-process-per-app")
	b.ReportMetric(created.Seconds(), "s-create-10000")
	b.Logf("10,000 registered apps, %d with an open database: RSS %.1f MB (target <= 300 MB: %s), peak %.1f MB; "+
		"one app alone: %.1f MB; a process per app would take %.0fx as much; created in %.1fs; load average %s",
		open, megabytes(mem.rss), verdict(megabytes(mem.rss) <= 300), megabytes(mem.hwm), megabytes(one.rss), ratio,
		created.Seconds(), loadAverage())
}

// BenchmarkCreate1000Apps measures creating 1,000 apps through the management API with a handful of
// concurrent clients, each PUT answered once the app is running. Target: at most 5 s in all.
func BenchmarkCreate1000Apps(b *testing.B) {
	const n = 1000
	rp := startRuntime(b, neverIdle)
	// Baseline: one app created alone on an empty runtime.
	alone := rp.createApps(b, []string{"solo"}, benchSpec(0), 1)
	names := appNames(n)
	b.ResetTimer()
	elapsed := rp.createApps(b, names, benchSpec(0), createWorkers)
	b.StopTimer()
	// Ready means it answers: one request to each app, outside the timed part, proves that.
	rp.touchApps(b, names, createWorkers)

	b.ReportMetric(elapsed.Seconds(), "s-total")
	b.ReportMetric(ms(elapsed)/n, "ms/app")
	b.ReportMetric(n/elapsed.Seconds(), "apps/s")
	b.ReportMetric(ms(alone), "ms-one-alone")
	b.Logf("created %d apps with %d clients in %.2fs (target <= 5 s: %s), %.2f ms per app; one app alone: %.1f ms; load average %s",
		n, createWorkers, elapsed.Seconds(), verdict(elapsed <= 5*time.Second), ms(elapsed)/n, ms(alone), loadAverage())
}

// BenchmarkWakeHibernated measures the first request to each of 500 hibernated apps (their database
// closed by the idle timeout), one app at a time. Target: p50 at most 5 ms, p99 at most 25 ms.
// Baseline: the same request to the same apps while awake.
func BenchmarkWakeHibernated(b *testing.B) {
	const n = 500
	rp := startRuntime(b, time.Second)
	names := appNames(n)
	rp.createApps(b, names, benchSpec(0), createWorkers)

	warm := make(latencies, 0, n)
	for _, name := range names {
		url := rp.appURL(name, "/api/customers?limit=20")
		rp.mustGet(b, url) // wakes it
		start := time.Now()
		rp.mustGet(b, url)
		warm = append(warm, time.Since(start))
	}

	// Wait until every app shows as hibernating, the runtime's own word for a closed database.
	deadline := time.Now().Add(30 * time.Second)
	for {
		hib := 0
		for _, a := range rp.appStats(b) {
			if a.Stats.Hibernating {
				hib++
			}
		}
		if hib == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d apps hibernated within 30s of a 1s idle timeout", hib, n)
		}
		time.Sleep(250 * time.Millisecond)
	}

	cold := make(latencies, 0, n)
	b.ResetTimer()
	for _, name := range names {
		url := rp.appURL(name, "/api/customers?limit=20")
		start := time.Now()
		rp.mustGet(b, url)
		cold = append(cold, time.Since(start))
	}
	b.StopTimer()

	p50, p99 := cold.percentile(0.50), cold.percentile(0.99)
	w50, w99 := warm.percentile(0.50), warm.percentile(0.99)
	b.ReportMetric(ms(p50), "ms-p50")
	b.ReportMetric(ms(p99), "ms-p99")
	b.ReportMetric(ms(cold.percentile(1)), "ms-max")
	b.ReportMetric(ms(w50), "ms-p50-awake")
	b.ReportMetric(ms(w99), "ms-p99-awake")
	b.Logf("first request to %d hibernated apps: p50 %.2f ms (target <= 5 ms: %s), p99 %.2f ms (target <= 25 ms: %s); "+
		"awake: p50 %.2f ms, p99 %.2f ms; load average %s",
		n, ms(p50), verdict(p50 <= 5*time.Millisecond), ms(p99), verdict(p99 <= 25*time.Millisecond), ms(w50), ms(w99), loadAverage())
}

// BenchmarkThroughput1000AppsLoaded measures requests/s to one app (one record by id, wrk with 16
// connections) with only that app loaded, then with 999 more apps loaded and each served a request,
// in the same runtime. Target: the second figure at least 0.9 times the first. Each figure is the
// median of five runs of 3 s, so that one run disturbed by the shared machine decides neither.
func BenchmarkThroughput1000AppsLoaded(b *testing.B) {
	wrk := wrkPath(b)
	rp := startRuntime(b, neverIdle)
	rp.createApps(b, []string{"target"}, benchSpec(0), 1)
	rp.seedCustomers(b, "target", 1000)
	url := rp.appURL("target", "/api/customers/500")
	rp.mustGet(b, url)

	const runs, each = 5, 3 * time.Second
	one, oneRuns := medianWrk(b, wrk, url, 16, 2, each, runs)
	others := appNames(999)
	rp.createApps(b, others, benchSpec(0), createWorkers)
	rp.touchApps(b, others, createWorkers)
	many, manyRuns := medianWrk(b, wrk, url, 16, 2, each, runs)

	ratio := many.reqPerSec / one.reqPerSec
	b.ReportMetric(one.reqPerSec, "req/s-1app")
	b.ReportMetric(many.reqPerSec, "req/s-1000apps")
	b.ReportMetric(ratio, "ratio")
	b.Logf("one app loaded: %.0f req/s (runs %.0f); 1,000 apps loaded: %.0f req/s (runs %.0f); ratio %.3f (target >= 0.9: %s); load average %s",
		one.reqPerSec, oneRuns, many.reqPerSec, manyRuns, ratio, verdict(ratio >= 0.9), loadAverage())
}

// BenchmarkBulkhead measures app B's latency (a page of 20, one request at a time) alone and while
// app A, limited to 4 requests in flight, is flooded by wrk with 64 connections on 2 threads. Target:
// B's p99 under the flood at most twice its p99 alone. A lighter flood (8 connections, 1 thread, still
// twice A's limit) is measured beside it to show how much of the effect is the flood's CPU.
func BenchmarkBulkhead(b *testing.B) {
	wrk := wrkPath(b)
	const limit = 4
	const probeFor = 5 * time.Second
	rp := startRuntime(b, neverIdle)
	rp.createApps(b, []string{"app-a", "app-b"}, benchSpec(limit), 2)
	rp.seedCustomers(b, "app-a", 1000)
	rp.seedCustomers(b, "app-b", 1000)
	aURL := rp.appURL("app-a", "/api/customers?limit=20")
	bURL := rp.appURL("app-b", "/api/customers?limit=20")
	rp.mustGet(b, aURL)
	rp.probe(b, bURL, 500*time.Millisecond) // warm the connection and the app

	alone := rp.probe(b, bURL, probeFor)
	flooded, heavy, rejected := floodWhileProbing(b, rp, wrk, aURL, bURL, 64, 2, probeFor)
	lightly, light, _ := floodWhileProbing(b, rp, wrk, aURL, bURL, 8, 1, probeFor)

	p99Alone, p99Flood, p99Light := alone.percentile(0.99), flooded.percentile(0.99), lightly.percentile(0.99)
	ratio := float64(p99Flood) / float64(p99Alone)
	b.ReportMetric(ms(alone.percentile(0.5)), "ms-p50-alone")
	b.ReportMetric(ms(p99Alone), "ms-p99-alone")
	b.ReportMetric(ms(flooded.percentile(0.5)), "ms-p50-flooded")
	b.ReportMetric(ms(p99Flood), "ms-p99-flooded")
	b.ReportMetric(ratio, "ratio-p99")
	b.ReportMetric(ms(p99Light), "ms-p99-light-flood")
	b.ReportMetric(float64(p99Light)/float64(p99Alone), "ratio-p99-light-flood")
	b.ReportMetric(heavy.reqPerSec, "req/s-to-A")
	b.Logf("B alone: p50 %.2f ms, p99 %.2f ms (%d requests); B while A is flooded (64 connections): p50 %.2f ms, p99 %.2f ms (%d requests); "+
		"ratio %.2f (target <= 2: %s); A answered %.0f req/s, %d non-2xx of %d, bulkhead rejections %d; load average %s",
		ms(alone.percentile(0.5)), ms(p99Alone), len(alone), ms(flooded.percentile(0.5)), ms(p99Flood), len(flooded),
		ratio, verdict(ratio <= 2), heavy.reqPerSec, heavy.non2xx, heavy.requests, rejected, loadAverage())
	b.Logf("light flood (8 connections, 1 thread): B p50 %.2f ms, p99 %.2f ms (%d requests), ratio %.2f; A answered %.0f req/s, %d non-2xx of %d",
		ms(lightly.percentile(0.5)), ms(p99Light), len(lightly), float64(p99Light)/float64(p99Alone), light.reqPerSec, light.non2xx, light.requests)
}

// floodWhileProbing floods aURL with wrk and, once the flood has filled A's slots, probes bURL for
// probeFor. It returns B's latencies, wrk's report and how many of A's requests its bulkhead rejected
// in all so far, and fails unless the flood went past A's limit.
func floodWhileProbing(b *testing.B, rp *runtimeProc, wrk, aURL, bURL string, conns, threads int, probeFor time.Duration) (latencies, wrkResult, int64) {
	b.Helper()
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	type floodResult struct {
		res wrkResult
		err error
	}
	done := make(chan floodResult, 1)
	go func() {
		res, err := runWrk(ctx, wrk, aURL, conns, threads, probeFor+2*time.Second)
		done <- floodResult{res, err}
	}()
	time.Sleep(time.Second)
	lat := rp.probe(b, bURL, probeFor)
	fr := <-done
	if fr.err != nil {
		b.Fatal(fr.err)
	}
	a, err := rp.mgmt.GetApp(b.Context(), "app-a")
	if err != nil {
		b.Fatal(err)
	}
	if fr.res.non2xx == 0 || a.Stats.Rejected == 0 {
		b.Fatalf("app A rejected nothing: a flood of %d connections did not pass its limit\n%s", conns, fr.res.raw)
	}
	return lat, fr.res, a.Stats.Rejected
}

// BenchmarkDataAPI measures the data API's throughput with wrk, 16 connections and 2 threads for
// 10 s, on a collection of 1,000 records: a page of 20, and one record by id. Baseline: PocketBase
// v0.36.8 on the same work; target: at least twice its figure.
func BenchmarkDataAPI(b *testing.B) {
	wrk := wrkPath(b)
	rp := startRuntime(b, neverIdle)
	rp.createApps(b, []string{"shop"}, benchSpec(0), 1)
	rp.seedCustomers(b, "shop", 1000)
	pageURL := rp.appURL("shop", "/api/customers?limit=20")
	idURL := rp.appURL("shop", "/api/customers/500")
	rp.mustGet(b, pageURL)
	rp.mustGet(b, idURL)
	rp.data.CloseIdleConnections()

	const conns, threads, dur = 16, 2, 10 * time.Second
	b.Run("page20", func(b *testing.B) {
		res := mustWrk(b, wrk, pageURL, conns, threads, dur, false)
		b.ReportMetric(res.reqPerSec, "req/s")
		b.ReportMetric(ms(res.p50), "ms-p50")
		b.ReportMetric(ms(res.p99), "ms-p99")
		b.ReportMetric(res.reqPerSec/pocketBasePageRPS, "x-pocketbase")
		b.Logf("page of 20 of 1,000: %.0f req/s, %.2fx PocketBase's %d (target >= %d: %s); p50 %.2f ms, p99 %.2f ms; load average %s",
			res.reqPerSec, res.reqPerSec/pocketBasePageRPS, pocketBasePageRPS, 2*pocketBasePageRPS,
			verdict(res.reqPerSec >= 2*pocketBasePageRPS), ms(res.p50), ms(res.p99), loadAverage())
	})
	b.Run("byID", func(b *testing.B) {
		res := mustWrk(b, wrk, idURL, conns, threads, dur, false)
		b.ReportMetric(res.reqPerSec, "req/s")
		b.ReportMetric(ms(res.p50), "ms-p50")
		b.ReportMetric(ms(res.p99), "ms-p99")
		b.ReportMetric(res.reqPerSec/pocketBaseByIDLoRPS, "x-pocketbase-low")
		b.ReportMetric(res.reqPerSec/pocketBaseByIDHiRPS, "x-pocketbase-high")
		b.Logf("one record by id: %.0f req/s, %.2fx-%.2fx PocketBase's %d-%d (target >= %d: %s; >= %d: %s); p50 %.2f ms, p99 %.2f ms; load average %s",
			res.reqPerSec, res.reqPerSec/pocketBaseByIDHiRPS, res.reqPerSec/pocketBaseByIDLoRPS, pocketBaseByIDLoRPS, pocketBaseByIDHiRPS,
			2*pocketBaseByIDLoRPS, verdict(res.reqPerSec >= 2*pocketBaseByIDLoRPS),
			2*pocketBaseByIDHiRPS, verdict(res.reqPerSec >= 2*pocketBaseByIDHiRPS),
			ms(res.p50), ms(res.p99), loadAverage())
	})
}
