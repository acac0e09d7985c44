package lock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// FileName is the name of the lock file inside the state dir.
const FileName = "lock"

// retryFor bounds how long Acquire keeps trying: long enough to ride out a holder that is just releasing,
// short enough that a second apply fails at once instead of hanging behind a long one.
const (
	retryFor   = time.Second
	retryEvery = 50 * time.Millisecond
)

// ErrLocked is what Acquire's error wraps when another process holds the lock; test with errors.Is.
var ErrLocked = errors.New("state dir is locked")

// Holder says who holds a lock.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`
}

// LockedError is returned by Acquire when another process holds the lock.
type LockedError struct {
	StateDir string
	// Holder is who holds the lock; zero when the holder had not yet written its name.
	Holder Holder
}

func (e *LockedError) Error() string {
	h := e.Holder
	if h.PID == 0 {
		return fmt.Sprintf("state dir %s is locked by another appfleet process; wait for it to finish", e.StateDir)
	}
	return fmt.Sprintf("state dir %s is locked by pid %d on host %s (%s, started %s); wait for it to finish",
		e.StateDir, h.PID, h.Host, h.Command, h.Started.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is a held lock on a state dir. Release it when the work is done; if the process dies first,
// the kernel releases it.
type Lock struct {
	f *os.File
}

// Acquire takes the lock of stateDir (creating the directory if needed) for command, which is shown
// verbatim to anyone who finds the lock taken (e.g. "appfleet apply"). It tries for about a second and then
// returns a *LockedError naming the holder.
func Acquire(stateDir, command string) (*Lock, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("lock state dir: %w", err)
	}
	path := filepath.Join(stateDir, FileName)
	// O_TRUNC must not be used: the file holds the current holder's name until we own the lock.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state dir: %w", err)
	}
	deadline := time.Now().Add(retryFor)
	for {
		held, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock state dir %s: %w", stateDir, err)
		}
		if !held {
			break
		}
		if time.Now().After(deadline) {
			holder := readHolder(f)
			f.Close()
			return nil, &LockedError{StateDir: stateDir, Holder: holder}
		}
		time.Sleep(retryEvery)
	}
	host, _ := os.Hostname()
	h := Holder{PID: os.Getpid(), Host: host, Command: command, Started: time.Now().UTC().Truncate(time.Second)}
	if err := writeHolder(f, h); err != nil {
		_ = unlock(f)
		f.Close()
		return nil, fmt.Errorf("lock state dir %s: record holder: %w", stateDir, err)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up. It is safe to call more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Clear the holder first so nobody reads a stale name; the file itself stays, because removing a
	// locked file lets a third process lock a new inode while a second still waits on the old one.
	_ = l.f.Truncate(0)
	errUnlock := unlock(l.f)
	errClose := l.f.Close()
	l.f = nil
	return errors.Join(errUnlock, errClose)
}

func writeHolder(f *os.File, h Holder) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(append(b, '\n'), 0); err != nil {
		return err
	}
	return f.Sync()
}

// readHolder reads who holds the lock. The holder writes its name right after locking, so an empty
// file is retried briefly before giving up on naming it.
func readHolder(f *os.File) Holder {
	for range 10 {
		b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<16))
		if err == nil && len(b) > 0 {
			var h Holder
			if json.Unmarshal(b, &h) == nil && h.PID != 0 {
				return h
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return Holder{}
}
