package gitsync

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sshd starts Debian's sshd on a free loopback port with a generated host key, authorising a generated
// client key, and returns the client key's path, a known_hosts file holding the host key, and the port.
func sshd(t *testing.T) (key, knownHosts string, port int) {
	t.Helper()
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
	}
	for _, b := range []string{bin, "ssh-keygen", "git-upload-pack"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s is not installed (openssh-server and git are needed for the ssh:// test; .ci/run installs them)", b)
		}
	}
	if me, err := user.Current(); err != nil || me.Uid != "0" {
		t.Skip("sshd needs root to run here")
	}
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	dir := t.TempDir()
	for _, name := range []string{"host_key", "client_key", "other_key"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", filepath.Join(dir, name)).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port = l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	cfg := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %[2]s/host_key\nAuthorizedKeysFile %[2]s/authorized_keys\n"+
		"PidFile %[2]s/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"+
		"PermitRootLogin prohibit-password\n", port, dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600))
	cmd := exec.Command(bin, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	log := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "sshd did not listen: %s", log)

	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	require.NoError(t, err)
	f := strings.Fields(string(hostPub))
	knownHosts = filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(knownHosts, fmt.Appendf(nil, "[127.0.0.1]:%d %s %s\n", port, f[0], f[1]), 0o600))
	return filepath.Join(dir, "client_key"), knownHosts, port
}

// ssh:// with a key file, the server checked against known_hosts; a server whose key is not the one
// known is refused.
func TestFetchOverSSH(t *testing.T) {
	key, known, port := sshd(t)
	src := t.TempDir()
	runGit(t, src, "init", "-q", "-b", "main")
	runGit(t, src, "config", "user.email", "a@example.test")
	runGit(t, src, "config", "user.name", "A")
	c1 := commitFiles(t, src, "over ssh", map[string]string{"fleet/a.yaml": "a: 1\n"})
	bare := filepath.Join(t.TempDir(), "fleet.git")
	runGit(t, src, "clone", "-q", "--bare", src, bare)
	url := fmt.Sprintf("ssh://root@127.0.0.1:%d%s", port, bare)

	r, err := Open(Options{URL: url, Dir: filepath.Join(t.TempDir(), "clone.git"), SSHKeyFile: key, SSHKnownHosts: []string{known}})
	require.NoError(t, err)
	head, err := r.Fetch(t.Context())
	require.NoError(t, err)
	assert.Equal(t, c1, head.Hash)

	// known_hosts holding another key for this server: refused.
	otherPub, err := os.ReadFile(filepath.Join(filepath.Dir(key), "other_key.pub"))
	require.NoError(t, err)
	f := strings.Fields(string(otherPub))
	wrong := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(wrong, fmt.Appendf(nil, "[127.0.0.1]:%d %s %s\n", port, f[0], f[1]), 0o600))
	r, err = Open(Options{URL: url, Dir: filepath.Join(t.TempDir(), "clone.git"), SSHKeyFile: key, SSHKnownHosts: []string{wrong}})
	require.NoError(t, err)
	_, err = r.Fetch(t.Context())
	require.Error(t, err, "a server whose key is not in known_hosts is refused")
	assert.Contains(t, err.Error(), "key")
}
