package testbin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	// The binary is built from the command line and everything under it. Importing it here makes every
	// test that runs the binary depend on that code, so Go's test cache reruns those tests when it changes
	// instead of reporting a result obtained with an older binary.
	_ "github.com/appfleet/appfleet/internal/cli"
)

// RaceEnv, set to 1, builds the binary with the race detector, so that the runtime processes the tests
// start are checked too.
const RaceEnv = "APPFLEET_TEST_RACE"

// Build compiles ./cmd/appfleet as a static binary into dir and returns its path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "appfleet")
	// The tests' binary carries the runtime's test hooks (apphost/hooks.go); a release build never does.
	args := []string{"build", "-tags", "appfleet_testhooks", "-o", bin}
	env := append(os.Environ(), "CGO_ENABLED=0")
	if os.Getenv(RaceEnv) == "1" {
		args = append(args, "-race")
		env = append(os.Environ(), "CGO_ENABLED=1")
	}
	cmd := exec.Command("go", append(args, "github.com/appfleet/appfleet/cmd/appfleet")...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/appfleet: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// Main is a TestMain body: it builds the binary into a temporary directory, stores its path in *bin,
// runs the tests and removes the directory. It returns the exit code for os.Exit.
func Main(m *testing.M, bin *string) int {
	dir, err := os.MkdirTemp("", "appfleet-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Output collects a process's output (its Stdout or Stderr) while a test reads it.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(b)
}

// String is everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
