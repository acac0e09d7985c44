//go:build !unix && !windows

package lock

import (
	"fmt"
	"os"
	"runtime"
)

func tryLock(*os.File) (bool, error) {
	return false, fmt.Errorf("locking a state dir is not supported on %s", runtime.GOOS)
}

func unlock(*os.File) error { return nil }
