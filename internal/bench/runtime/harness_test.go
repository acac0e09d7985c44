package runtime

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"golang.org/x/sync/errgroup"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/internal/testbin"
	"github.com/appfleet/appfleet/spec"
)

// buildRoot holds the binary built for this test process; TestMain removes it.
var (
	buildOnce sync.Once
	buildRoot string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildRoot != "" {
		_ = os.RemoveAll(buildRoot)
	}
	os.Exit(code)
}

// appfleetBinary returns the path of a static appfleet binary, built once per test process so that
// the build never lands inside a measurement.
func appfleetBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("APPFLEET_BIN"); p != "" {
			binPath = p
			return
		}
		if buildRoot, buildErr = os.MkdirTemp("", "appfleet-bench-bin-"); buildErr != nil {
			return
		}
		binPath, buildErr = testbin.Build(buildRoot)
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// runtimeProc is one `appfleet runtime serve` process on a fresh data dir.
type runtimeProc struct {
	cmd     *exec.Cmd
	addr    string // 127.0.0.1:port
	base    string // http://addr
	token   string
	dataDir string
	logPath string
	mgmt    *api.Client
	data    *http.Client // app traffic, keep-alive
}

// startRuntime starts a runtime whose apps hibernate after idle and waits until it is ready. The
// process is killed in a Cleanup: a benchmark must never leave one behind.
func startRuntime(tb testing.TB, idle time.Duration) *runtimeProc {
	tb.Helper()
	return startRuntimeOn(tb, idle, nil)
}

// startRuntimeOn is startRuntime with the process started through prefix (taskset -c N, see pinning)
// and given extra flags.
func startRuntimeOn(tb testing.TB, idle time.Duration, prefix []string, flags ...string) *runtimeProc {
	tb.Helper()
	bin := appfleetBinary(tb)
	dir := tb.TempDir()
	tokBytes := make([]byte, 16)
	_, _ = rand.Read(tokBytes)
	rp := &runtimeProc{
		token:   hex.EncodeToString(tokBytes),
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "runtime.log"),
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(rp.token+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	logFile, err := os.Create(rp.logPath)
	if err != nil {
		tb.Fatal(err)
	}
	argv := append(slices.Clone(prefix), bin, "runtime", "serve",
		// Port 0: the runtime picks a free port and writes it to DATA_DIR/runtime.addr, so no other
		// process on this shared machine can take the port between choosing and binding it.
		"--data-dir", rp.dataDir, "--listen", "127.0.0.1:0", "--token-file", tokenFile,
		"--name", "bench", "--idle-timeout", idle.String(), "--max-apps", "0")
	argv = append(argv, flags...)
	rp.cmd = exec.Command(argv[0], argv[1:]...)
	rp.cmd.Stdout, rp.cmd.Stderr = logFile, logFile
	if err := rp.cmd.Start(); err != nil {
		_ = logFile.Close()
		tb.Fatalf("start runtime: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = rp.cmd.Wait(); close(exited); _ = logFile.Close() }()
	tb.Cleanup(func() {
		// Killed rather than stopped: a graceful stop closes every database, which is not what is
		// measured and would only make the run longer.
		_ = rp.cmd.Process.Kill()
		<-exited
	})
	rp.data = &http.Client{
		Timeout: 30 * time.Second,
		// App traffic never redirects; following one would hide a wrong URL behind a 200.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := rp.ready()
		if err == nil {
			return rp
		}
		select {
		case <-exited:
			tb.Fatalf("runtime exited before it was ready:\n%s", rp.logTail())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("runtime not ready after 20s: %v\n%s", err, rp.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ready returns nil once the runtime has written its address and answers /readyz there.
func (rp *runtimeProc) ready() error {
	if rp.mgmt == nil {
		b, err := os.ReadFile(filepath.Join(rp.dataDir, "runtime.addr"))
		addr := strings.TrimSpace(string(b))
		if err != nil || addr == "" {
			return errors.New("no runtime.addr yet")
		}
		rp.addr, rp.base = addr, "http://"+addr
		rp.mgmt = api.NewClient(addr, rp.token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := rp.mgmt.Ready(ctx)
	if err != nil {
		rp.mgmt = nil // read the file again: it may have been caught half written
	}
	return err
}

func (rp *runtimeProc) logTail() string {
	b, _ := os.ReadFile(rp.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// procMem is what /proc/<pid>/status says of a process's memory, in bytes.
type procMem struct{ rss, hwm uint64 }

func (rp *runtimeProc) memory(tb testing.TB) procMem {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", rp.cmd.Process.Pid))
	if err != nil {
		tb.Fatalf("read runtime memory: %v", err)
	}
	defer f.Close()
	var m procMem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			tb.Fatalf("parse %s: %v", key, err)
		}
		if key == "VmRSS" {
			m.rss = kb * 1024
		} else {
			m.hwm = kb * 1024
		}
	}
	if m.rss == 0 {
		tb.Fatal("no VmRSS in /proc status")
	}
	return m
}

// megabytes converts bytes to decimal megabytes, the unit the targets are written in.
func megabytes(b uint64) float64 { return float64(b) / 1e6 }

// benchSpec is the app every benchmark creates: a SQLite database with two collections, open to
// requests without a key, optionally behind a bulkhead.
func benchSpec(maxInFlight int) spec.AppSpec {
	return spec.AppSpec{
		Environment: "bench",
		State:       spec.StateRunning,
		Limits:      spec.Limits{MaxInFlight: maxInFlight},
		Collections: []spec.Collection{
			{Name: "customers", Fields: []spec.Field{
				{Name: "name", Type: "string", Required: true},
				{Name: "email", Type: "string", Unique: true},
				{Name: "tier", Type: "enum", Values: []string{"free", "pro"}, Default: "free"},
				{Name: "score", Type: "integer"},
			}},
			{Name: "orders", Fields: []spec.Field{
				{Name: "customer", Type: "integer", Required: true},
				{Name: "total", Type: "number"},
				{Name: "paid", Type: "boolean"},
			}},
		},
	}
}

func appName(i int) string { return fmt.Sprintf("app-%05d", i) }

// createApps PUTs every name with s through the management API from workers concurrent clients and
// returns how long that took in all. Every app must answer running.
func (rp *runtimeProc) createApps(tb testing.TB, names []string, s spec.AppSpec, workers int) time.Duration {
	tb.Helper()
	ctx := tb.Context()
	start := time.Now()
	err := forEach(len(names), workers, func(i int) error {
		app, err := rp.mgmt.PutApp(ctx, names[i], api.PutAppRequest{Spec: s}, api.PutOptions{})
		if err == nil && app.Status != api.StatusRunning {
			err = fmt.Errorf("app %s is %s after PUT: %s", names[i], app.Status, app.Error)
		}
		if err != nil {
			return fmt.Errorf("create app %s: %w", names[i], err)
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		tb.Fatalf("%v\n%s", err, rp.logTail())
	}
	return elapsed
}

// forEach calls fn for 0..n-1 from workers goroutines and returns the first error; after an error no
// further calls start.
func forEach(n, workers int, fn func(i int) error) error {
	g, failed := errgroup.WithContext(context.Background())
	g.SetLimit(workers)
	for i := range n {
		if failed.Err() != nil {
			break
		}
		g.Go(func() error { return fn(i) })
	}
	return g.Wait()
}

// appURL is the URL of path (starting with /api/...) in app name.
func (rp *runtimeProc) appURL(name, path string) string { return rp.base + "/apps/" + name + path }

// get sends one GET of app traffic and returns the status after reading the whole body, so the
// connection goes back to the pool.
func (rp *runtimeProc) get(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := rp.data.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// mustGet is get that fails the benchmark unless the answer is 200.
func (rp *runtimeProc) mustGet(tb testing.TB, url string) {
	tb.Helper()
	status, err := rp.get(tb.Context(), url)
	if err != nil || status != http.StatusOK {
		tb.Fatalf("GET %s: status %d, %v", url, status, err)
	}
}

// touchApps serves one request (a page of customers) to every app from workers concurrent clients.
func (rp *runtimeProc) touchApps(tb testing.TB, names []string, workers int) {
	tb.Helper()
	ctx := tb.Context()
	err := forEach(len(names), workers, func(i int) error {
		url := rp.appURL(names[i], "/api/customers?limit=20")
		status, err := rp.get(ctx, url)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("status %d", status)
		}
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("%v\n%s", err, rp.logTail())
	}
}

// seedCustomers creates n customer records in app name, from 4 concurrent clients.
func (rp *runtimeProc) seedCustomers(tb testing.TB, name string, n int) {
	tb.Helper()
	ctx := tb.Context()
	url := rp.appURL(name, "/api/customers")
	err := forEach(n, 4, func(i int) error {
		i++ // records are numbered from 1
		tier := "free"
		if i%3 == 0 {
			tier = "pro"
		}
		body, _ := json.Marshal(map[string]any{
			"name": fmt.Sprintf("Customer %d", i), "email": fmt.Sprintf("customer%d@example.test", i),
			"tier": tier, "score": i % 100,
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := rp.data.Do(req)
		if err != nil {
			return fmt.Errorf("POST %s: %w", url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST %s: status %d", url, resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("%v\n%s", err, rp.logTail())
	}
}

// appStats returns the stats of every app, by name.
func (rp *runtimeProc) appStats(tb testing.TB) map[string]api.App {
	tb.Helper()
	apps, err := rp.mgmt.ListApps(tb.Context())
	if err != nil {
		tb.Fatalf("list apps: %v", err)
	}
	out := make(map[string]api.App, len(apps))
	for _, a := range apps {
		out[a.Name] = a
	}
	return out
}

// latencies is a set of measured request durations.
type latencies []time.Duration

// percentile returns the q-quantile (0 < q <= 1) by the nearest-rank method: the smallest sample at
// or above a fraction q of all samples. It sorts the samples in place.
func (l latencies) percentile(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	rank := int(math.Ceil(q*float64(len(l)))) - 1
	return l[max(rank, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// probe sends GETs of url one after another for d and returns each one's latency. Sequential on one
// keep-alive connection, so each sample is the service time and not queueing behind the prober's
// own requests.
func (rp *runtimeProc) probe(tb testing.TB, url string, d time.Duration) latencies {
	tb.Helper()
	var out latencies
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		start := time.Now()
		rp.mustGet(tb, url)
		out = append(out, time.Since(start))
	}
	return out
}

// wrkResult is what one wrk run reported.
type wrkResult struct {
	reqPerSec     float64
	requests      int64
	non2xx        int64
	socketErrors  string
	p50, p90, p99 time.Duration
	raw           string
}

// wrkPath returns wrk's path, or skips the benchmark when it is not installed.
func wrkPath(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("wrk")
	if err != nil {
		tb.Skip("wrk is not installed (apt-get install -y wrk); this benchmark measures throughput with it")
	}
	return p
}

// runWrk runs wrk against url with conns connections on threads threads for d, as an external
// process so the load generator is not the Go process being measured, and parses its report.
func runWrk(ctx context.Context, wrk, url string, conns, threads int, d time.Duration) (wrkResult, error) {
	return runWrkOn(ctx, nil, wrk, url, conns, threads, d)
}

// runWrkOn is runWrk with wrk started through prefix (taskset -c N, see pinning).
func runWrkOn(ctx context.Context, prefix []string, wrk, url string, conns, threads int, d time.Duration) (wrkResult, error) {
	secs := max(int(d/time.Second), 1)
	argv := append(slices.Clone(prefix), wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(secs)+"s", "--latency", url)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	res := wrkResult{raw: string(out)}
	if err != nil {
		return res, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	inDist := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "Latency" && len(f) > 1 && f[1] == "Distribution":
			inDist = true
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, perr := parseWrkDuration(f[1])
			if perr != nil {
				return res, perr
			}
			switch f[0] {
			case "50%":
				res.p50 = d
			case "90%":
				res.p90 = d
			case "99%":
				res.p99 = d
			}
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			inDist = false
			res.requests, _ = strconv.ParseInt(f[0], 10, 64)
		case strings.HasPrefix(line, "  Non-2xx or 3xx responses:"):
			res.non2xx, _ = strconv.ParseInt(f[len(f)-1], 10, 64)
		case strings.HasPrefix(line, "  Socket errors:"):
			res.socketErrors = strings.TrimSpace(strings.TrimPrefix(line, "  Socket errors:"))
		case f[0] == "Requests/sec:" && len(f) == 2:
			res.reqPerSec, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	if res.reqPerSec == 0 {
		return res, fmt.Errorf("wrk printed no Requests/sec:\n%s", out)
	}
	return res, nil
}

// parseWrkDuration reads wrk's latency figures: "812.00us", "1.23ms", "2.01s", "1.50m".
func parseWrkDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"m", time.Minute}, {"s", time.Second}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk latency %q: %w", s, err)
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("wrk latency %q: unknown unit", s)
}

// mustWrk is runWrk that fails the benchmark on an error and, unless errorsExpected, on any
// answer that is not 2xx: a throughput figure made of error answers would be meaningless.
func mustWrk(tb testing.TB, wrk, url string, conns, threads int, d time.Duration, errorsExpected bool) wrkResult {
	tb.Helper()
	return mustWrkOn(tb, nil, wrk, url, conns, threads, d, errorsExpected)
}

// mustWrkOn is mustWrk with wrk started through prefix (taskset -c N, see pinning).
func mustWrkOn(tb testing.TB, prefix []string, wrk, url string, conns, threads int, d time.Duration, errorsExpected bool) wrkResult {
	tb.Helper()
	res, err := runWrkOn(tb.Context(), prefix, wrk, url, conns, threads, d)
	if err != nil {
		tb.Fatal(err)
	}
	if !errorsExpected && (res.non2xx > 0 || (res.socketErrors != "" && !strings.Contains(res.socketErrors, "connect 0, read 0, write 0, timeout 0"))) {
		tb.Fatalf("wrk saw errors (non-2xx %d, socket errors %q):\n%s", res.non2xx, res.socketErrors, res.raw)
	}
	return res
}

// medianWrk runs wrk runs times and returns the run with the median requests/s, so that one
// disturbed run on a shared machine does not decide the figure either way.
func medianWrk(tb testing.TB, wrk, url string, conns, threads int, d time.Duration, runs int) (wrkResult, []float64) {
	tb.Helper()
	results := make([]wrkResult, 0, runs)
	for range runs {
		results = append(results, mustWrk(tb, wrk, url, conns, threads, d, false))
	}
	slices.SortFunc(results, func(a, b wrkResult) int {
		switch {
		case a.reqPerSec < b.reqPerSec:
			return -1
		case a.reqPerSec > b.reqPerSec:
			return 1
		}
		return 0
	})
	all := make([]float64, len(results))
	for i, r := range results {
		all[i] = r.reqPerSec
	}
	return results[len(results)/2], all
}

// verdict says whether a figure met its target, for the log line under each result.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// loadAverage is the first field of /proc/loadavg, logged with each result because the machine is
// shared and the load generator shares its cores with the runtime.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
