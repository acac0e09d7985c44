//go:build unix

package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/apphost/runtimelock"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// alive reports whether pid is the runtime whose data dir is dataDir. Checking the command line, not
// just that the pid exists, guards against a pid reused by an unrelated process after the runtime died;
// it also treats a zombie (an exited child nobody reaped yet, whose command line is empty) as dead.
func alive(pid int, dataDir string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !procfs() {
			// Without /proc there is no command line to check; existence is the best available answer.
			return unix.Kill(pid, 0) == nil
		}
		return false
	}
	for _, arg := range bytes.Split(b, []byte{0}) {
		if string(arg) == dataDir {
			return true
		}
	}
	return false
}

func procfs() bool {
	_, err := os.Stat("/proc/self/cmdline")
	return err == nil
}

// waitDead polls until the runtime is gone or the bound passes.
func waitDead(pid int, dataDir string, bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	for alive(pid, dataDir) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
	return true
}

// stopProcess stops the runtime gracefully: SIGTERM lets it close its databases; only when it has not
// exited within grace does SIGKILL end it and anything it started (it leads its own process group).
func stopProcess(pid int, dataDir string, grace time.Duration) error {
	if !alive(pid, dataDir) {
		return nil
	}
	if err := unix.Kill(pid, unix.SIGTERM); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop runtime (pid %d): %w", pid, err)
	}
	// A stopped (SIGSTOP) runtime handles SIGTERM only once it runs again.
	_ = unix.Kill(pid, unix.SIGCONT)
	if waitDead(pid, dataDir, grace) {
		return nil
	}
	_ = unix.Kill(-pid, unix.SIGKILL)
	_ = unix.Kill(pid, unix.SIGKILL)
	if waitDead(pid, dataDir, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("stop runtime (pid %d): still running after SIGKILL", pid)
}

// ensureToken returns the environment's bearer token: the declared one (written to path when it differs),
// else the one in path, created on first use. The provider makes the token itself, before the runtime
// starts, so it never has to read it back from the runtime.
// changed reports that the file held another token, which a runtime already running still uses.
func ensureToken(path string, declared *spec.SecretRef) (token string, changed bool, err error) {
	b, err := os.ReadFile(path)
	if declared != nil && declared.Value != "" {
		if err == nil && strings.TrimSpace(string(b)) == declared.Value {
			return declared.Value, false, nil
		}
		if err := providers.WriteFileAtomic(path, []byte(declared.Value+"\n"), 0o600); err != nil {
			return "", false, err
		}
		return declared.Value, true, nil
	}
	if err == nil {
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	tok := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", false, err
	}
	// WriteFile keeps the mode of an existing (empty) file; the token must be private whatever was there.
	if err := os.Chmod(path, 0o600); err != nil {
		return "", false, err
	}
	// A runtime that still runs was started with the token that was lost: it must start again.
	return tok, true, nil
}

// readToken returns the token, or "" when there is none.
func readToken(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// freeLoopbackAddr asks the kernel for a free port on the loopback interface.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// addrFree reports whether something could listen on addr now.
func addrFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// waitAddrFree is addrFree with patience: a runtime that just died or was stopped may still hold its
// socket for a moment while the kernel tears the process down, after its command line is already gone.
func waitAddrFree(addr string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		err := addrFree(addr)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// endpointURL is the base URL a client on this machine uses for a runtime listening on addr: a runtime
// listening on every interface is reached through loopback.
func endpointURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if ip != nil && ip.To4() == nil {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// errNotOurs is what identify's error wraps when what answers on an address is not the environment's runtime.
var errNotOurs = errors.New("not this environment's runtime")

// identify checks that what answers at url is the runtime of dataDir that holds its lock now: it
// accepts token, reports dataDir as its data dir, and the instance id the lock records. /readyz alone
// proves nothing: any program, or another runtime that took the port, may answer it.
func identify(ctx context.Context, url, token, dataDir string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rt, err := api.NewClient(url, token).Runtime(ctx)
	if err != nil {
		return fmt.Errorf("%w: GET %s/v1/runtime: %w", errNotOurs, url, err)
	}
	if rt.DataDir != dataDir {
		return fmt.Errorf("%w: the runtime at %s serves data dir %q", errNotOurs, url, rt.DataDir)
	}
	info, held, err := runtimelock.Read(dataDir)
	switch {
	case err != nil:
		return fmt.Errorf("read the lock of %s: %w", dataDir, err)
	case !held:
		return fmt.Errorf("%w: no runtime holds the lock of %s", errNotOurs, dataDir)
	case info.Instance != rt.Instance:
		return fmt.Errorf("%w: the runtime at %s is instance %s, the lock of %s is held by instance %s (pid %d)",
			errNotOurs, url, rt.Instance, dataDir, info.Instance, info.PID)
	}
	return nil
}

// logTail returns the last lines of the log written from offset on, for an error message.
func logTail(path string, offset int64, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxBytes = 16 << 10
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size()-offset > maxBytes {
		offset = st.Size() - maxBytes
	}
	b, err := io.ReadAll(io.NewSectionReader(f, offset, st.Size()-offset))
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
