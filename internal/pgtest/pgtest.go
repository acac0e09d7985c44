package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BinDir returns the directory of the PostgreSQL server binaries (initdb, pg_ctl), or "" when they
// are not installed.
func BinDir() string {
	var candidates []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(globbed) - 1; i >= 0; i-- { // newest version first
		candidates = append(candidates, globbed[i])
	}
	for _, dir := range candidates {
		if isExec(filepath.Join(dir, "initdb")) && isExec(filepath.Join(dir, "pg_ctl")) {
			return dir
		}
	}
	return ""
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Start runs a new PostgreSQL server for the test and returns a DSN of its superuser "postgres"
// (trust authentication on 127.0.0.1). The server is stopped and its files removed when tb ends.
func Start(tb testing.TB) string {
	tb.Helper()
	bin := BinDir()
	if bin == "" {
		tb.Skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: `pg_config --bindir` and /usr/lib/postgresql/*/bin have none; install the postgresql package (.ci/run does)")
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	runAs := func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("running as root, the PostgreSQL server needs the postgres user (initdb refuses root): %v; create it with `useradd --system postgres` (.ci/run does)", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
		runAs = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
		}
	}
	data, sock, logFile := filepath.Join(dir, "data"), filepath.Join(dir, "sock"), filepath.Join(dir, "log")
	run := func(cmd *exec.Cmd) {
		tb.Helper()
		out, err := cmd.CombinedOutput()
		if err != nil {
			log, _ := os.ReadFile(logFile)
			tb.Fatalf("%s: %v\n%s\n%s", strings.Join(cmd.Args, " "), err, out, log)
		}
	}
	run(runAs(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"))
	run(runAs("mkdir", "-p", sock))
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, sock)
	run(runAs(filepath.Join(bin, "pg_ctl"), "-D", data, "-o", opts, "-l", logFile, "-w", "-t", "60", "start"))
	tb.Cleanup(func() {
		out, err := runAs(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop").CombinedOutput()
		if err != nil {
			tb.Logf("stop PostgreSQL: %v\n%s", err, out)
		}
	})
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
