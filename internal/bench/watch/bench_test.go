package watch

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/gitops"
	"github.com/appfleet/appfleet/gitops/webhook"
	"github.com/appfleet/appfleet/internal/bench/fleet"
	"github.com/appfleet/appfleet/internal/testbin"
)

var binary string

// TestMain builds the binary only when benchmarks run: a plain `go test ./...` pays nothing here.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	os.Exit(testbin.Main(m, &binary))
}

const (
	apps    = 1000
	samples = 15
	secret  = "bench-secret"
)

type daemon struct {
	b     *testing.B
	cmd   *exec.Cmd
	log   *testbin.Output
	addr  string
	state string
}

func startDaemon(b *testing.B, repo, state string, args ...string) *daemon {
	b.Helper()
	secretFile := filepath.Join(state, "..", "hook.secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		b.Fatal(err)
	}
	_ = os.Remove(filepath.Join(state, "watch", gitops.AddrFile))
	d := &daemon{b: b, log: &testbin.Output{}, state: state}
	all := append([]string{"watch", "--repo", "file://" + repo, "--path", "fleet", "--state-dir", state,
		"--listen", "127.0.0.1:0", "--webhook-secret-file", secretFile, "--self-heal", "--log-level", "info"}, args...)
	d.cmd = exec.Command(binary, all...)
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if raw, err := os.ReadFile(filepath.Join(state, "watch", gitops.AddrFile)); err == nil && len(raw) > 0 {
			d.addr = strings.TrimSpace(string(raw))
			return d
		}
		if time.Now().After(deadline) {
			b.Fatalf("watch did not start:\n%s", d.log.String())
		}
	}
}

func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	_ = d.cmd.Wait()
}

// waitApplied waits until the daemon's log says the commit was applied (reading the log costs the daemon
// nothing, unlike polling its status of 1,000 apps).
func (d *daemon) waitApplied(hash string, timeout time.Duration) {
	d.b.Helper()
	needle := `msg="commit applied" commit=` + hash[:12]
	for deadline := time.Now().Add(timeout); !strings.Contains(d.log.String(), needle); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			d.b.Fatalf("commit %s not applied within %s:\n%s", hash[:12], timeout, fleet.Tail(d.log.String(), 40))
		}
	}
}

func (d *daemon) status() gitops.Status {
	resp, err := http.Get("http://" + d.addr + "/api/status")
	if err != nil {
		d.b.Fatal(err)
	}
	defer resp.Body.Close()
	var st gitops.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		d.b.Fatal(err)
	}
	return st
}

func git(b *testing.B, dir string, args ...string) string {
	b.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// changeOneField sets the currency of app i in the repository and commits it.
func changeOneField(b *testing.B, repo string, i int, currency string) string {
	b.Helper()
	p := filepath.Join(repo, "fleet", "apps", fleet.AppName(i)+".yaml")
	raw, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	for j, l := range lines {
		if strings.HasPrefix(l, "  settings: {currency: ") {
			rest := l[strings.Index(l, ","):]
			lines[j] = "  settings: {currency: " + currency + rest
		}
	}
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		b.Fatal(err)
	}
	git(b, repo, "commit", "-q", "-am", fmt.Sprintf("%s: currency %s", fleet.AppName(i), currency))
	return git(b, repo, "rev-parse", "HEAD")
}

// runtimeClient is a client of the fleet's one runtime, as the local provider left its endpoint and token.
func runtimeClient(b *testing.B, state string, st gitops.Status) *api.Client {
	b.Helper()
	if len(st.Environments) != 1 {
		b.Fatalf("want one environment, status has %d", len(st.Environments))
	}
	env := st.Environments[0]
	tok, err := os.ReadFile(filepath.Join(state, "environments", env.Name, "token"))
	if err != nil {
		b.Fatal(err)
	}
	return api.NewClient(env.Endpoint, strings.TrimSpace(string(tok)))
}

// waitCurrency waits until the runtime serves app name with the currency: the change has converged.
func waitCurrency(b *testing.B, rt *api.Client, d *daemon, name, currency string) {
	b.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if a, err := rt.GetApp(b.Context(), name); err == nil && a.Spec.Settings["currency"] == currency {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s never got currency %s:\n%s", name, currency, fleet.Tail(d.log.String(), 40))
		}
	}
}

type dist []time.Duration

func (d dist) pct(p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func (d dist) String() string {
	return fmt.Sprintf("p50 %s, p90 %s, max %s (n=%d)", d.pct(0.5).Round(time.Millisecond), d.pct(0.9).Round(time.Millisecond), d.pct(1).Round(time.Millisecond), len(d))
}

// procCPU is the user+system CPU time of pid; procRSS its resident memory in bytes.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

func procRSS(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkWatch1000Apps measures the daemon on a fleet of 1,000 apps in one local runtime; see the
// package doc. Run it with -benchtime 1x: each phase reports its own figures.
func BenchmarkWatch1000Apps(b *testing.B) {
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("git is not installed")
	}
	root, err := filepath.EvalSymlinks(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	repo, state := filepath.Join(root, "repo"), filepath.Join(root, "state")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		b.Fatal(err)
	}
	git(b, repo, "init", "-q", "-b", "main")
	git(b, repo, "config", "user.email", "bench@example.test")
	git(b, repo, "config", "user.name", "Bench")
	if err := fleet.WriteManifests(filepath.Join(repo, "fleet"), apps, 1); err != nil {
		b.Fatal(err)
	}
	git(b, repo, "add", "-A")
	git(b, repo, "commit", "-q", "-m", "1000 apps")
	first := git(b, repo, "rev-parse", "HEAD")
	b.Cleanup(func() { _, _ = fleet.KillRuntimes(state, 10*time.Second) })
	b.Logf("load average at start: %s", fleet.LoadAverage())

	start := time.Now()
	d := startDaemon(b, repo, state, "--interval", "1m")
	d.waitApplied(first, 20*time.Minute)
	b.Logf("first commit (1,000 apps created) applied in %s", time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // let the events of the creation settle
	rt := runtimeClient(b, state, d.status())

	// 1. One-field commit -> applied, after a webhook.
	body := []byte(`{"ref":"refs/heads/main"}`)
	var hooked dist
	b.ResetTimer()
	for i := range samples {
		hash := changeOneField(b, repo, i, fmt.Sprintf("W%02d", i))
		t0 := time.Now()
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.addr+"/hooks/github", bytes.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte(secret), body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			b.Fatalf("webhook: %v %v", err, resp)
		}
		resp.Body.Close()
		waitCurrency(b, rt, d, fleet.AppName(i), fmt.Sprintf("W%02d", i))
		hooked = append(hooked, time.Since(t0))
		d.waitApplied(hash, 2*time.Minute)
		time.Sleep(500 * time.Millisecond)
	}
	b.StopTimer()
	st := d.status()
	if st.LastPlan == nil || st.LastPlan.Summary != "Plan: 0 to create, 1 to update, 0 to delete." {
		b.Fatalf("the last plan is not exactly one update: %+v", st.LastPlan)
	}
	b.Logf("webhook -> converged (the runtime serves the change), one field of one app in 1,000: %s", hooked)
	b.ReportMetric(hooked.pct(0.5).Seconds(), "webhook-p50-s")
	b.ReportMetric(hooked.pct(0.9).Seconds(), "webhook-p90-s")

	// 2. Out-of-band change -> healed.
	var healed dist
	for i := range samples {
		name := fleet.AppName(100 + i)
		a, err := rt.GetApp(b.Context(), name)
		if err != nil {
			b.Fatal(err)
		}
		want := a.Spec.Settings["currency"]
		changed := a.Spec
		changed.Settings = map[string]string{"currency": "OOB", "region": a.Spec.Settings["region"]}
		t0 := time.Now()
		if _, err := rt.PutApp(b.Context(), name, api.PutAppRequest{Spec: changed, Labels: a.Labels}, api.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		for {
			got, err := rt.GetApp(b.Context(), name)
			if err == nil && got.Spec.Settings["currency"] == want {
				break
			}
			if time.Since(t0) > 2*time.Minute {
				b.Fatalf("%s not healed:\n%s", name, fleet.Tail(d.log.String(), 40))
			}
			time.Sleep(5 * time.Millisecond)
		}
		healed = append(healed, time.Since(t0))
		time.Sleep(500 * time.Millisecond)
	}
	b.Logf("out-of-band change -> healed: %s", healed)
	b.ReportMetric(healed.pct(0.5).Seconds(), "heal-p50-s")
	b.ReportMetric(healed.pct(0.9).Seconds(), "heal-p90-s")

	// 3. The idle daemon: CPU over 30 s and resident memory, 1,000 apps watched.
	time.Sleep(5 * time.Second)
	pid := d.cmd.Process.Pid
	cpu0, t0 := procCPU(b, pid), time.Now()
	time.Sleep(30 * time.Second)
	cpu, wall := procCPU(b, pid)-cpu0, time.Since(t0)
	rss := procRSS(b, pid)
	b.Logf("idle daemon: %s CPU in %s (%.2f%% of one core), RSS %.1f MB", cpu, wall.Round(time.Second), 100*cpu.Seconds()/wall.Seconds(), float64(rss)/1e6)
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "idle-cpu-%")
	b.ReportMetric(float64(rss)/1e6, "idle-rss-MB")
	d.stop()

	// 4. One-field commit -> applied, with --interval 1s and no webhook.
	d = startDaemon(b, repo, state, "--interval", "1s")
	head := git(b, repo, "rev-parse", "HEAD")
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if st := d.status(); st.Applied != nil && st.Applied.Hash == head {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("restarted daemon did not reach the head:\n%s", fleet.Tail(d.log.String(), 40))
		}
	}
	time.Sleep(2 * time.Second)
	var polled dist
	for i := range samples {
		hash := changeOneField(b, repo, 200+i, fmt.Sprintf("P%02d", i))
		t0 := time.Now()
		waitCurrency(b, rt, d, fleet.AppName(200+i), fmt.Sprintf("P%02d", i))
		polled = append(polled, time.Since(t0))
		d.waitApplied(hash, 2*time.Minute)
		time.Sleep(time.Duration(300+137*i%700) * time.Millisecond) // commits land at any point of the interval
	}
	d.stop()
	b.Logf("commit -> converged with --interval 1s: %s", polled)
	b.ReportMetric(polled.pct(0.5).Seconds(), "interval1s-p50-s")
	b.ReportMetric(polled.pct(0.9).Seconds(), "interval1s-p90-s")
	b.Logf("load average at end: %s", fleet.LoadAverage())
}
