//go:build !unix

package cli

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
)

// defaultMaxRestoreSize is --max-restore-size's default; runtime serve does not run here.
const defaultMaxRestoreSize = 0

// serveRuntime says that a runtime cannot run here: it relies on Unix process and file semantics
// (file locks held by the kernel, open-file limits, signals).
func serveRuntime(context.Context, *runtimeServeOptions, *slog.Logger) error {
	return fmt.Errorf("appfleet runtime serve is not supported on %s; runtimes run on Linux and macOS. From here, use docker or terraform environments, whose runtimes run elsewhere", runtime.GOOS)
}
