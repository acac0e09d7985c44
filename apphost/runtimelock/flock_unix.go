//go:build unix

package runtimelock

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// tryLock tries to take an exclusive (runtime) or shared (probe) flock on f without waiting. held is
// true when another open file holds a lock that conflicts. A probe releases its shared lock at once.
func tryLock(f *os.File, exclusive bool) (held bool, err error) {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		return true, nil
	case err != nil:
		return false, err
	}
	if !exclusive {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	}
	return false, nil
}
