// Package testbin builds the appfleet binary for tests that run it as a real process: the runtime's
// process tests, the providers' conformance suite, the end-to-end scripts and the benchmarks.
// It is imported only from tests.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	// The binary is built from the command line and everything under it. Importing it here makes every
	// test that runs the binary depend on that code, so Go's test cache reruns those tests when it changes
	// instead of reporting a result obtained with an older binary.
	_ "github.com/appfleet/appfleet/internal/cli"
)

// Build compiles ./cmd/appfleet as a static binary into dir and returns its path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "appfleet")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/appfleet/appfleet/cmd/appfleet")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/appfleet: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}
