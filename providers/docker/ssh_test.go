package docker_test

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
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/providers/docker"
	"github.com/appfleet/appfleet/providers/providertest"
	"github.com/appfleet/appfleet/spec"
)

// sshHost starts Debian's sshd on a free loopback port, with a generated host key and a generated client
// key, and returns the ssh:// URL of this machine through it. The ssh command the provider runs is pointed
// (through APPFLEET_SSH_COMMAND) at an ssh config naming the key and a known_hosts file that holds the
// host key, with StrictHostKeyChecking on: nothing is accepted blindly. The "remote" is this machine, whose
// docker CLI answers `docker system dial-stdio` there.
func sshHost(t *testing.T) string {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	for _, bin := range []string{sshd, "ssh", "ssh-keygen", "docker"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (openssh-server, openssh-client and the docker CLI are needed for the ssh:// test; .ci/run installs them)", bin)
		}
	}
	me, err := user.Current()
	require.NoError(t, err)
	if me.Uid != "0" {
		t.Skip("sshd needs root to run here")
	}
	// sshd refuses to start without its privilege separation directory.
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))

	dir, err := os.MkdirTemp("", "appfleet-sshd-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	keygen := func(name string) {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", filepath.Join(dir, name)).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	keygen("host_key")
	keygen("client_key")
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %[2]s/host_key
AuthorizedKeysFile %[2]s/authorized_keys
PidFile %[2]s/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
`, port, dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600))
	cmd := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	log := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	require.NoError(t, err)
	fields := strings.Fields(string(hostPub))
	known := fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port, fields[0], fields[1])
	require.NoError(t, os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(known), 0o600))
	clientCfg := fmt.Sprintf(`Host 127.0.0.1
  IdentityFile %[1]s/client_key
  IdentitiesOnly yes
  UserKnownHostsFile %[1]s/known_hosts
  StrictHostKeyChecking yes
  LogLevel ERROR
`, dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ssh_config"), []byte(clientCfg), 0o600))
	t.Setenv(docker.SSHCommandEnv, "ssh -F "+filepath.Join(dir, "ssh_config"))

	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "sshd did not listen: %s", log)
	return fmt.Sprintf("ssh://%s@127.0.0.1:%d", me.Username, port)
}

// TestSSHHost runs the conformance suite against an ssh:// host: the engine reached with
// `ssh ... docker system dial-stdio`, and the runtime's management API, published on the remote's
// loopback only, reached through the provider's tunnel over the same ssh.
func TestSSHHost(t *testing.T) {
	cli := engine(t)
	url := sshHost(t)
	sshEnv := func(name string) spec.Environment {
		env := newEnv(name)
		env.Spec.Docker.Host = url
		return env
	}
	providertest.Run(t, func(t *testing.T) providertest.Target {
		fleet := uniqueFleet(t, cli)
		return providertest.Target{
			Provider: newProvider(t, fleet),
			Fleet:    fleet,
			Env:      sshEnv("dev"),
			Crash: func(t *testing.T, obs providers.Observed) {
				id := obs.Detail["container"]
				_, err := cli.ContainerUpdate(t.Context(), id, client.ContainerUpdateOptions{
					RestartPolicy: &container.RestartPolicy{Name: container.RestartPolicyDisabled}})
				require.NoError(t, err)
				_, err = cli.ContainerKill(t.Context(), id, client.ContainerKillOptions{Signal: "KILL"})
				require.NoError(t, err)
			},
		}
	})

	t.Run("TunnelNotPublishedPort", func(t *testing.T) {
		fleet := uniqueFleet(t, cli)
		p := newProvider(t, fleet)
		env := sshEnv("dev")
		providertest.DestroyOnCleanup(t, p, env)
		ep, err := p.Apply(t.Context(), env)
		require.NoError(t, err)
		obs, err := p.Observe(t.Context(), env)
		require.NoError(t, err)
		assert.Equal(t, url, obs.Detail["host"])
		published := obs.Detail["published"]
		require.True(t, strings.HasPrefix(published, "127.0.0.1:"), "published on the remote's loopback only: %q", published)
		assert.NotEqual(t, "http://"+published, ep.URL, "this machine reaches it through the tunnel, not the published port")
		_, err = api.NewClient(ep.URL, ep.Token).ListApps(t.Context())
		require.NoError(t, err, "the management API answers through the tunnel")
	})

	t.Run("UnknownHostKeyRefused", func(t *testing.T) {
		// Another known_hosts entry for the port: StrictHostKeyChecking refuses, and the error says why.
		cfgPath := strings.TrimPrefix(os.Getenv(docker.SSHCommandEnv), "ssh -F ")
		kh := filepath.Join(filepath.Dir(cfgPath), "known_hosts")
		good, err := os.ReadFile(kh)
		require.NoError(t, err)
		t.Cleanup(func() { _ = os.WriteFile(kh, good, 0o600) })
		f := strings.Fields(string(good))
		require.NoError(t, os.WriteFile(kh, []byte(f[0]+" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGz3wXvGVRVr0lLzqgXjHzQWvOj4Oa3ClZ1J7C1u+1m1\n"), 0o600))
		p := newProvider(t, uniqueFleet(t, cli))
		_, err = p.Apply(t.Context(), sshEnv("dev"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), `environment "dev"`)
		assert.Contains(t, err.Error(), "does not answer")
		assert.Contains(t, strings.ToLower(err.Error()), "host key")
	})
}
