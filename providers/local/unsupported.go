//go:build !unix

package local

import (
	"fmt"
	"runtime"

	"github.com/appfleet/appfleet/providers"
)

// New says that the local provider cannot run here: its runtime (appfleet runtime serve) needs Unix
// sessions, signals and file locks. Environments of this machine's other providers (docker,
// terraform) work from here.
func New(providers.Config) (providers.Provider, error) {
	return nil, fmt.Errorf("the local provider is not supported on %s: its runtime runs on Linux and macOS; use a docker or terraform environment from here", runtime.GOOS)
}
