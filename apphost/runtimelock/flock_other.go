//go:build !unix

package runtimelock

import (
	"errors"
	"os"
)

// tryLock has no flock to use here: a runtime cannot run on this system.
func tryLock(*os.File, bool) (bool, error) {
	return false, errors.New("a runtime's data-dir lock needs a Unix system")
}
