package fleet

import (
	"testing"
	"time"
)

// CLIEnv is the environment every benchmarked appfleet command runs with: plain output, and no state dir
// from the caller's environment.
var CLIEnv = []string{"NO_COLOR=1", "APPFLEET_STATE_DIR="}

// Appfleet runs the appfleet binary bin with args in dir, failing tb when it cannot run at all; the
// caller checks the exit code.
func Appfleet(tb testing.TB, bin, dir string, args ...string) Result {
	tb.Helper()
	res, err := Run(tb.Context(), dir, CLIEnv, bin, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// Must is Appfleet that also fails tb when the command exits non-zero, with the end of its output.
func Must(tb testing.TB, bin, dir string, args ...string) Result {
	tb.Helper()
	res := Appfleet(tb, bin, dir, args...)
	if res.Exit != 0 {
		tb.Fatalf("appfleet %v: exit %d\n%s\n%s", args, res.Exit, Tail(res.Stdout, 20), Tail(res.Stderr, 20))
	}
	return res
}

// LogLoad logs the machine's load average and the time, which every figure is read beside.
func LogLoad(tb testing.TB) {
	tb.Helper()
	tb.Logf("load average %s at %s", LoadAverage(), time.Now().Format(time.RFC3339))
}

// Ms is d in milliseconds, for ReportMetric.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
