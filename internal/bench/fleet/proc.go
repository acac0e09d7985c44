package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Result is how one command ended.
type Result struct {
	Exit     int
	Stdout   string
	Stderr   string
	Duration time.Duration // from start to exit, what a user waits for
	// CPU is the user and system time of the process itself (not of the runtimes it talks to): on a
	// shared machine it tells work apart from waiting for a core.
	CPU time.Duration
}

// Run runs name with args in dir and the given extra environment, and reports its exit code and output.
// A command that ran and exited non-zero is not an error: callers assert the exit code they expect.
func Run(ctx context.Context, dir string, env []string, name string, args ...string) (Result, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	res := Result{Duration: time.Since(start), Stdout: stdout.String(), Stderr: stderr.String()}
	if ps := cmd.ProcessState; ps != nil {
		res.CPU = ps.UserTime() + ps.SystemTime()
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.Exit = exit.ExitCode()
		return res, nil
	case err != nil:
		return res, fmt.Errorf("run %s %s: %w", name, strings.Join(args, " "), err)
	}
	return res, nil
}

// Tail is the last n lines of s, for error messages that must stay readable after a 1,000-app apply.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// runtimeRecord is the part of the local provider's runtime.json needed to find its process.
type runtimeRecord struct {
	PID     int    `json:"pid"`
	DataDir string `json:"dataDir"`
}

// KillRuntimes stops every runtime process recorded under stateDir/environments/*/runtime.json that
// still runs: SIGTERM, then SIGKILL after grace. It is the fallback after `appfleet destroy`, for a run
// that was interrupted or a destroy that failed. A pid counts as the runtime only when its command line
// names the runtime's data dir, so that a pid reused by another process is never signalled. It returns
// the pids it signalled.
func KillRuntimes(stateDir string, grace time.Duration) ([]int, error) {
	files, err := filepath.Glob(filepath.Join(stateDir, "environments", "*", "runtime.json"))
	if err != nil {
		return nil, err
	}
	var killed []int
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var rec runtimeRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		if !isRuntime(rec) {
			continue
		}
		if err := syscall.Kill(rec.PID, syscall.SIGTERM); err != nil {
			continue // gone since
		}
		killed = append(killed, rec.PID)
	}
	deadline := time.Now().Add(grace)
	for _, pid := range killed {
		for processExists(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if processExists(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return killed, errors.Join(errs...)
}

// isRuntime reports whether rec's pid is still the runtime it records: alive, not a zombie, and started
// with that data dir.
func isRuntime(rec runtimeRecord) bool {
	if rec.PID <= 0 || rec.DataDir == "" || !processExists(rec.PID) {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(rec.PID) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(rec.DataDir))
}

// processExists is true for a live process; a zombie (exited, not yet reaped by its parent) is not live.
func processExists(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may itself hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	return stat[i+2] != 'Z'
}

// LoadAverage is the first three fields of /proc/loadavg, as uptime prints them.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on every Linux build Go
// supports.
const clockTick = 10 * time.Millisecond

// RuntimesCPU is the CPU time (user and system) used so far by every live runtime recorded under
// stateDir: the work an apply causes inside the runtimes, which the apply process's own CPU time leaves out.
func RuntimesCPU(stateDir string) (time.Duration, error) {
	files, err := filepath.Glob(filepath.Join(stateDir, "environments", "*", "runtime.json"))
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		var rec runtimeRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		if !isRuntime(rec) {
			continue
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(rec.PID) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command name: state is the 1st, utime the 12th, stime the 13th.
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: too few fields", rec.PID)
		}
		for _, s := range f[11:13] {
			ticks, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/stat: %w", rec.PID, err)
			}
			total += time.Duration(ticks) * clockTick
		}
	}
	return total, nil
}
