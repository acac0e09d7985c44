package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/appfleet/appfleet/spec"
)

// SSHCommandEnv names the variable that replaces the ssh command the provider runs for ssh:// hosts, split
// on white space (no shell quoting), such as "ssh -F /etc/appfleet/ssh_config". Default: ssh.
const SSHCommandEnv = "APPFLEET_SSH_COMMAND"

// defaultSocket is where the local engine listens when neither the manifest nor DOCKER_HOST names a host.
const defaultSocket = "/var/run/docker.sock"

// host is one Docker host the provider talks to, with its API client and, for ssh://, the tunnels to the
// runtimes published on the remote's loopback.
type host struct {
	url    string // as declared (or from DOCKER_HOST), "" for the local default
	scheme string // unix, tcp, ssh, npipe
	cli    *client.Client
	ssh    *sshTarget // nil unless scheme is ssh

	mu      sync.Mutex
	tunnels map[string]*tunnel // remote host:port -> local listener
}

// hostKey identifies a host and the TLS files used to reach it.
func hostKey(d *spec.DockerSpec, dir string) string {
	k := effectiveHost(d)
	if d != nil && d.TLS != nil {
		k += "|" + d.TLS.Path(d.TLS.CA, dir) + "|" + d.TLS.Path(d.TLS.Cert, dir) + "|" + d.TLS.Path(d.TLS.Key, dir)
	}
	return k
}

// effectiveHost is the declared host, else DOCKER_HOST, else "" (the local default socket).
func effectiveHost(d *spec.DockerSpec) string {
	if d != nil && d.Host != "" {
		return d.Host
	}
	return os.Getenv("DOCKER_HOST")
}

// dial builds the client for a host. It does not contact the host: the first call does.
func dial(d *spec.DockerSpec, dir string) (*host, error) {
	raw := effectiveHost(d)
	h := &host{url: raw, tunnels: map[string]*tunnel{}}
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if raw == "" {
		h.scheme = "unix"
		opts = append(opts, client.WithHost("unix://"+defaultSocket))
	} else {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" {
			return nil, fmt.Errorf("docker host %q is not a URL such as unix:///var/run/docker.sock, tcp://10.0.0.5:2376 or ssh://user@host", raw)
		}
		h.scheme = u.Scheme
		switch u.Scheme {
		case "unix", "npipe":
			opts = append(opts, client.WithHost(raw))
		case "tcp", "http", "https":
			h.scheme = "tcp"
			opts = append(opts, client.WithHost("tcp://"+u.Host))
			if d != nil && d.TLS != nil {
				for _, f := range []struct{ field, path string }{{"ca", d.TLS.CA}, {"cert", d.TLS.Cert}, {"key", d.TLS.Key}} {
					if f.path == "" {
						continue
					}
					if _, err := os.Stat(d.TLS.Path(f.path, dir)); err != nil {
						return nil, fmt.Errorf("docker host %s: TLS file %s (spec.docker.tls.%s): %w", raw, f.path, f.field, err)
					}
				}
				opts = append(opts, client.WithTLSClientConfig(d.TLS.Path(d.TLS.CA, dir), d.TLS.Path(d.TLS.Cert, dir), d.TLS.Path(d.TLS.Key, dir)))
			} else if os.Getenv("DOCKER_CERT_PATH") != "" && (d == nil || d.Host == "") {
				opts = append(opts, client.WithTLSClientConfigFromEnv())
			}
		case "ssh":
			t, err := parseSSH(u)
			if err != nil {
				return nil, err
			}
			h.ssh = t
			// The HTTP requests go through `docker system dial-stdio` on the remote; the host name in
			// them is never resolved.
			opts = append(opts,
				client.WithHost("http://docker.invalid"),
				client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
					return t.command(ctx, "docker", "system", "dial-stdio")
				}),
			)
		default:
			return nil, fmt.Errorf("docker host %q: unknown scheme %q (use unix://, tcp:// or ssh://)", raw, u.Scheme)
		}
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker host %s: %w", h.display(), err)
	}
	h.cli = cli
	return h, nil
}

// display names the host in messages.
func (h *host) display() string {
	if h.url == "" {
		return "unix://" + defaultSocket
	}
	return h.url
}

// remote reports whether published ports are on another machine than this one.
func (h *host) remote() bool { return h.scheme == "tcp" || h.scheme == "ssh" }

func (h *host) close() {
	h.mu.Lock()
	for _, t := range h.tunnels {
		t.close()
	}
	h.tunnels = map[string]*tunnel{}
	h.mu.Unlock()
	_ = h.cli.Close()
}

// sshTarget is an ssh:// host: user, host and port, handed to the ssh binary.
type sshTarget struct {
	dest string   // [user@]host
	args []string // -p PORT and the fixed options
	cmd  []string // the ssh command itself (SSHCommandEnv)
}

func parseSSH(u *url.URL) (*sshTarget, error) {
	if u.Hostname() == "" {
		return nil, fmt.Errorf("docker host %q names no host", u.Redacted())
	}
	if _, set := u.User.Password(); set {
		return nil, errors.New("an ssh:// docker host takes no password: use a key (ssh-agent or ~/.ssh/config)")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("docker host %q: an ssh:// host has no path", u.Redacted())
	}
	t := &sshTarget{dest: u.Hostname()}
	if u.User != nil && u.User.Username() != "" {
		t.dest = u.User.Username() + "@" + u.Hostname()
	}
	// BatchMode: never ask a question on a terminal that is not there; fail instead.
	t.args = []string{"-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-T"}
	if p := u.Port(); p != "" {
		t.args = append(t.args, "-p", p)
	}
	t.cmd = strings.Fields(os.Getenv(SSHCommandEnv))
	if len(t.cmd) == 0 {
		t.cmd = []string{"ssh"}
	}
	return t, nil
}

// command runs ssh with extra arguments (before the destination) and a remote command (after it), and
// returns its standard input and output as a connection.
func (t *sshTarget) command(ctx context.Context, remote ...string) (net.Conn, error) {
	return t.run(ctx, nil, remote)
}

// forward returns a connection to addr as seen from the remote host, through ssh -W.
func (t *sshTarget) forward(ctx context.Context, addr string) (net.Conn, error) {
	return t.run(ctx, []string{"-W", addr}, nil)
}

func (t *sshTarget) run(_ context.Context, extra, remote []string) (net.Conn, error) {
	args := append([]string{}, t.cmd[1:]...)
	args = append(args, t.args...)
	args = append(args, extra...)
	args = append(args, "--", t.dest)
	args = append(args, remote...)
	// Not CommandContext: the connection outlives the dial's context; closing it ends the process.
	cmd := exec.Command(t.cmd[0], args...)
	return startCommandConn(cmd)
}

// commandConn is a net.Conn over a process's standard input and output.
type commandConn struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *tailBuffer

	once sync.Once
	done chan struct{}
	err  error
}

func startCommandConn(cmd *exec.Cmd) (*commandConn, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &commandConn{cmd: cmd, stdin: stdin, stdout: stdout, stderr: &tailBuffer{max: 4 << 10}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// Read returns what the process wrote; at its end, an error that carries what it said on stderr (ssh's
// own reason: host key, permission denied, connection refused).
func (c *commandConn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	if err == io.EOF && n == 0 {
		select {
		case <-c.done:
		case <-time.After(2 * time.Second):
		}
		if msg := strings.TrimSpace(c.stderr.String()); msg != "" {
			return 0, fmt.Errorf("%s: %s", c.cmd.Path, msg)
		}
	}
	return n, err
}

func (c *commandConn) Write(p []byte) (int, error) { return c.stdin.Write(p) }

func (c *commandConn) Close() error {
	c.once.Do(func() {
		_ = c.stdin.Close()
		select {
		case <-c.done:
		case <-time.After(2 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	return nil
}

func (c *commandConn) LocalAddr() net.Addr              { return cmdAddr{} }
func (c *commandConn) RemoteAddr() net.Addr             { return cmdAddr{} }
func (c *commandConn) SetDeadline(time.Time) error      { return nil }
func (c *commandConn) SetReadDeadline(time.Time) error  { return nil }
func (c *commandConn) SetWriteDeadline(time.Time) error { return nil }
func (cmdAddr) Network() string                         { return "cmd" }
func (cmdAddr) String() string                          { return "ssh" }

type cmdAddr struct{}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// tunnel is a loopback listener on this machine whose every connection is forwarded, through ssh -W, to
// one address on the remote host.
type tunnel struct {
	ln     net.Listener
	target string
}

// tunnelTo returns the base URL of a tunnel to addr (host:port as seen from the remote), opening it on
// first use. The same address always gets the same local URL for the life of the provider.
func (h *host) tunnelTo(addr string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.tunnels[addr]; ok {
		return "http://" + t.ln.Addr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("open a local end for the ssh tunnel: %w", err)
	}
	t := &tunnel{ln: ln, target: addr}
	h.tunnels[addr] = t
	go t.serve(h.ssh)
	return "http://" + ln.Addr().String(), nil
}

func (t *tunnel) serve(s *sshTarget) {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r, err := s.forward(context.Background(), t.target)
			if err != nil {
				return
			}
			defer r.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(r, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, r); done <- struct{}{} }()
			<-done
		}()
	}
}

func (t *tunnel) close() { _ = t.ln.Close() }
