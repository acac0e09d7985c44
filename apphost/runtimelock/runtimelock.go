package runtimelock

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// FileName is the lock file's name inside the data dir.
const FileName = "runtime.lock"

// Info is what the holder of a data dir's lock writes into the lock file.
type Info struct {
	PID int `json:"pid"`
	// Address is the host:port the runtime listens on; empty until it is bound.
	Address string `json:"address"`
	// Instance is a random id made when the runtime started; GET /v1/runtime reports the same.
	Instance string `json:"instance"`
	// Started is when the runtime took the lock (RFC 3339).
	Started time.Time `json:"started"`
}

// ErrHeld is what Acquire's error wraps when another process holds the lock; test with errors.Is.
var ErrHeld = errors.New("data dir is in use by another runtime")

// HeldError is Acquire's error when another runtime holds the data dir.
type HeldError struct {
	DataDir string
	// Holder is what the holder wrote; zero when it had not written yet.
	Holder Info
}

func (e *HeldError) Error() string {
	h := e.Holder
	switch {
	case h.PID == 0:
		return fmt.Sprintf("data dir %s is in use by another runtime; stop it first or choose another --data-dir", e.DataDir)
	case h.Address == "":
		return fmt.Sprintf("data dir %s is in use by the runtime with pid %d (started %s, not listening yet); stop it first or choose another --data-dir",
			e.DataDir, h.PID, h.Started.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("data dir %s is in use by the runtime with pid %d listening on %s (started %s); stop it first or choose another --data-dir",
		e.DataDir, h.PID, h.Address, h.Started.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Lock is a held data-dir lock. The kernel releases it when the process ends; Release gives it up before.
type Lock struct {
	f    *os.File
	info Info
}

// retry bounds how long Acquire tries again after finding the lock taken: Read takes it for an instant
// to probe it, and a runtime starting at that instant must not fail for it. A real holder keeps it far
// longer, so a second runtime still fails at once for a person.
const (
	retryFor   = 500 * time.Millisecond
	retryEvery = 20 * time.Millisecond
)

// Acquire takes the lock of dataDir, which must exist, and records this process as its holder with a
// new instance id. When another runtime holds it, it returns a *HeldError naming that runtime.
func Acquire(dataDir string) (*Lock, error) {
	path := filepath.Join(dataDir, FileName)
	// Never O_TRUNC: the file names the current holder until we own the lock.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	deadline := time.Now().Add(retryFor)
	for {
		held, err := tryLock(f, true)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("lock data dir %s: %w", dataDir, err)
		}
		if !held {
			break
		}
		if time.Now().After(deadline) {
			info, _ := readInfo(f)
			_ = f.Close()
			return nil, &HeldError{DataDir: dataDir, Holder: info}
		}
		time.Sleep(retryEvery)
	}
	l := &Lock{f: f, info: Info{PID: os.Getpid(), Instance: newInstance(), Started: time.Now().UTC().Truncate(time.Second)}}
	// The lock is what keeps a second runtime out; a record that cannot be written (a full disk) only
	// makes the second runtime's message less precise, so it is not a reason to refuse to start.
	// SetAddress writes it again and reports a failure.
	_ = l.write()
	return l, nil
}

// Info is what the lock records about its holder.
func (l *Lock) Info() Info { return l.info }

// SetAddress records the address the runtime listens on.
func (l *Lock) SetAddress(addr string) error {
	l.info.Address = addr
	return l.write()
}

// Release gives the lock up; the file stays, and so does the record in it (Read tells by the flock, not
// by the record, whether a runtime holds it; keeping the record keeps the file's block for the next
// runtime to write into). It is safe to call more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor of the open file releases the flock
	l.f = nil
	return err
}

func (l *Lock) write() error {
	b, err := json.Marshal(l.info)
	if err != nil {
		return err
	}
	// Written over the previous record, then cut to length: the file keeps the block it has, so the
	// record can be written on a full disk.
	b = append(b, '\n')
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("record the runtime in %s: %w", FileName, err)
	}
	if err := l.f.Truncate(int64(len(b))); err != nil {
		return fmt.Errorf("record the runtime in %s: %w", FileName, err)
	}
	return nil
}

// Read reports whether a runtime holds the lock of dataDir and, when it does, what it recorded. A data
// dir without a lock file is not held. It never blocks and never creates the file.
func Read(dataDir string) (info Info, held bool, err error) {
	f, err := os.Open(filepath.Join(dataDir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return Info{}, false, nil
	}
	if err != nil {
		return Info{}, false, err
	}
	defer f.Close()
	if held, err = tryLock(f, false); err != nil || !held {
		return Info{}, false, err
	}
	// The holder writes its record right after locking; give it a moment.
	for range 25 {
		if info, err = readInfo(f); err == nil && info.PID != 0 {
			return info, true, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return info, true, nil
}

func readInfo(f *os.File) (Info, error) {
	b := make([]byte, 4096)
	n, err := f.ReadAt(b, 0)
	if n == 0 {
		return Info{}, err
	}
	var info Info
	if err := json.Unmarshal(b[:n], &info); err != nil {
		return Info{}, fmt.Errorf("read %s: %w", FileName, err)
	}
	return info, nil
}

func newInstance() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
