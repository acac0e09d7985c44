package lock_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/internal/lock"
)

// helperEnv, when set, makes TestHelperHoldLock take the lock of that state dir and hold it until killed
// or until its stdin closes: it is the other process of the contention tests.
const helperEnv = "APPFLEET_LOCK_TEST_HOLD"

func TestHelperHoldLock(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("only runs as the lock-holding process of another test")
	}
	l, err := lock.Acquire(dir, "appfleet apply")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	require.NoError(t, l.Release())
	os.Exit(0)
}

// holdInOtherProcess starts a process that takes the lock and returns once it holds it.
func holdInOtherProcess(t *testing.T, dir string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)
	return cmd, stdin
}

func TestAcquireRelease(t *testing.T) {
	dir := t.TempDir()
	l, err := lock.Acquire(dir, "appfleet apply")
	require.NoError(t, err)

	// flock is per open file, so even this process cannot take it twice.
	_, err = lock.Acquire(dir, "appfleet destroy")
	require.ErrorIs(t, err, lock.ErrLocked)
	assert.Contains(t, err.Error(), "pid "+strconv.Itoa(os.Getpid()))

	require.NoError(t, l.Release())
	require.NoError(t, l.Release(), "a second release is harmless")

	l2, err := lock.Acquire(dir, "appfleet destroy")
	require.NoError(t, err)
	require.NoError(t, l2.Release())
}

func TestAcquireCreatesStateDir(t *testing.T) {
	dir := t.TempDir() + "/nested/.appfleet"
	l, err := lock.Acquire(dir, "appfleet apply")
	require.NoError(t, err)
	require.NoError(t, l.Release())
	assert.FileExists(t, dir+"/lock")
}

func TestContentionAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	holder, stdin := holdInOtherProcess(t, dir)

	start := time.Now()
	_, err := lock.Acquire(dir, "appfleet apply")
	elapsed := time.Since(start)
	require.ErrorIs(t, err, lock.ErrLocked)
	assert.Less(t, elapsed, 2*time.Second, "a taken lock fails fast")

	host, _ := os.Hostname()
	msg := err.Error()
	assert.Contains(t, msg, "state dir "+dir+" is locked by pid "+strconv.Itoa(holder.Process.Pid))
	assert.Contains(t, msg, "on host "+host)
	assert.Contains(t, msg, "(appfleet apply, started ")
	assert.True(t, strings.HasSuffix(msg, "wait for it to finish"), msg)

	var le *lock.LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, holder.Process.Pid, le.Holder.PID)
	assert.WithinDuration(t, time.Now(), le.Holder.Started, time.Minute)

	// A holder that finishes normally frees the lock.
	require.NoError(t, stdin.Close())
	require.NoError(t, holder.Wait())
	l, err := lock.Acquire(dir, "appfleet apply")
	require.NoError(t, err)
	require.NoError(t, l.Release())
}

func TestKilledHolderFreesLock(t *testing.T) {
	dir := t.TempDir()
	holder, _ := holdInOtherProcess(t, dir)

	require.NoError(t, holder.Process.Signal(syscall.SIGKILL))
	_ = holder.Wait()

	l, err := lock.Acquire(dir, "appfleet apply")
	require.NoError(t, err, "a lock whose holder died is never in the way")
	require.NoError(t, l.Release())
}
