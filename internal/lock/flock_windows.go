//go:build windows

package lock

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockedRange is the byte range the lock takes: one byte far past the holder's name, because a Windows
// lock keeps others from reading what it covers and a second caller must read who holds the lock.
func lockedRange() *windows.Overlapped { return &windows.Overlapped{OffsetHigh: 0x7fffffff} }

// tryLock takes an exclusive lock on f without waiting; held is true when another open file holds it.
func tryLock(f *os.File) (held bool, err error) {
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY,
		0, 1, 0, lockedRange())
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION):
		return true, nil
	default:
		return false, err
	}
}

func unlock(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, lockedRange())
}
