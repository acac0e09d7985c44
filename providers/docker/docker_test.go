package docker_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/internal/dockertest"
	"github.com/appfleet/appfleet/internal/testbin"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/providers/docker"
	"github.com/appfleet/appfleet/providers/providertest"
	"github.com/appfleet/appfleet/spec"
)

// binary is the real appfleet command, built once for the package's tests; images are built from it.
var binary string

// TestMain builds the binary, runs the tests, and removes the image the tests built from the binary
// (unless a container still uses it).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "appfleet-docker-test-")
	if err == nil {
		binary, err = testbin.Build(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation()); err == nil {
		removeImagesOf(cli, binary)
		_ = cli.Close()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// engine returns a client of the local Docker engine, or skips the test when none answers.
func engine(t *testing.T) *client.Client {
	t.Helper()
	cli, err := dockertest.Connect(t.Context())
	if err != nil {
		t.Skipf("no Docker engine answers here (%v): the docker provider's tests need one (.ci/run starts dockerd where it is installed)", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// uniqueFleet returns a fleet name no other test uses, and removes, when the test ends, every container
// and volume labelled with it: the test created them all, whatever state it failed in.
func uniqueFleet(t *testing.T, cli *client.Client) string {
	t.Helper()
	raw := make([]byte, 4)
	_, _ = rand.Read(raw)
	fleet := "t" + hex.EncodeToString(raw)
	t.Cleanup(func() { dockertest.RemoveFleet(cli, fleet) })
	return fleet
}

func newEnv(name string) spec.Environment {
	return spec.Environment{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindEnvironment,
		Metadata:   spec.Metadata{Name: name},
		Spec: spec.EnvironmentSpec{
			Provider: spec.ProviderDocker,
			Docker:   &spec.DockerSpec{},
			Runtime:  spec.RuntimeSpec{MaxApps: 100, IdleTimeout: spec.Duration{Duration: 10 * time.Minute}},
		},
	}
}

func newProvider(t *testing.T, fleet string) *docker.Provider {
	t.Helper()
	p, err := docker.New(providers.Config{Fleet: fleet, StateDir: t.TempDir(), Binary: binary})
	require.NoError(t, err)
	dp := p.(*docker.Provider)
	t.Cleanup(func() { _ = dp.Close() })
	return dp
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Target {
		cli := engine(t)
		fleet := uniqueFleet(t, cli)
		return providertest.Target{
			Provider: newProvider(t, fleet),
			Fleet:    fleet,
			Env:      newEnv("dev"),
			// A crash Docker does not heal by itself: the restart policy gone (as after a daemon that
			// gave up on it), then SIGKILL. Apply must start it again and put the policy back.
			Crash: func(t *testing.T, obs providers.Observed) {
				id := obs.Detail["container"]
				_, err := cli.ContainerUpdate(t.Context(), id, client.ContainerUpdateOptions{
					RestartPolicy: &container.RestartPolicy{Name: container.RestartPolicyDisabled}})
				require.NoError(t, err)
				_, err = cli.ContainerKill(t.Context(), id, client.ContainerKillOptions{Signal: "KILL"})
				require.NoError(t, err)
			},
			Conflict: func(t *testing.T) (spec.Environment, string) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				t.Cleanup(func() { l.Close() })
				env := newEnv("dev")
				env.Spec.Docker.Publish = l.Addr().String()
				return env, "publish address " + l.Addr().String() + " (spec.docker.publish) is in use"
			},
		}
	})
}
