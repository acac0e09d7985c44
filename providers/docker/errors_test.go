package docker_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/providers/providertest"
	"github.com/appfleet/appfleet/spec"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestBadInput: each mistake is refused with an error that names the environment and the cause, and
// leaves nothing behind.
func TestBadInput(t *testing.T) {
	cli := engine(t)
	cases := []struct {
		name string
		edit func(t *testing.T, env *spec.Environment)
		want []string
	}{{
		name: "unknown host scheme",
		edit: func(_ *testing.T, env *spec.Environment) { env.Spec.Docker.Host = "ftp://10.0.0.5" },
		want: []string{`unknown scheme "ftp"`, "unix://, tcp:// or ssh://"},
	}, {
		name: "missing TLS file",
		edit: func(t *testing.T, env *spec.Environment) {
			env.Source.Dir = t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(env.Source.Dir, "ca.pem"), []byte("x"), 0o600))
			env.Spec.Docker.Host = "tcp://" + closedPort(t)
			env.Spec.Docker.TLS = &spec.DockerTLS{CA: "ca.pem", Cert: "certs/cert.pem", Key: "certs/key.pem"}
		},
		want: []string{"TLS file certs/cert.pem (spec.docker.tls.cert)", "no such file"},
	}, {
		name: "host that does not answer",
		edit: func(t *testing.T, env *spec.Environment) { env.Spec.Docker.Host = "tcp://" + closedPort(t) },
		want: []string{"does not answer", "Cannot connect to the Docker daemon"},
	}, {
		name: "image that does not exist on the host",
		edit: func(_ *testing.T, env *spec.Environment) { env.Spec.Docker.Image = "appfleet-test-missing:never-built" },
		want: []string{"image appfleet-test-missing:never-built (spec.docker.image) does not exist on docker host", "appfleet never pulls"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fleet := uniqueFleet(t, cli)
			p := newProvider(t, fleet)
			env := newEnv("dev")
			tc.edit(t, &env)
			_, err := p.Apply(t.Context(), env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), `environment "dev"`)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			_, err = p.Observe(t.Context(), env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), `environment "dev"`)
			requireNothingOf(t, cli, fleet)
		})
	}
}

func requireNothingOf(t *testing.T, cli *client.Client, fleet string) {
	t.Helper()
	label := client.Filters{}.Add("label", spec.LabelFleet+"="+fleet)
	cs, err := cli.ContainerList(t.Context(), client.ContainerListOptions{All: true, Filters: label})
	require.NoError(t, err)
	assert.Empty(t, cs.Items, "no container is left")
	vs, err := cli.VolumeList(t.Context(), client.VolumeListOptions{Filters: label})
	require.NoError(t, err)
	assert.Empty(t, vs.Items, "no volume is left")
}

// TestNameClashRefused: a container of the environment's name that this fleet did not create is never
// adopted, changed or removed, by apply or by destroy.
func TestNameClashRefused(t *testing.T) {
	cli := engine(t)
	fleet := uniqueFleet(t, cli)
	p := newProvider(t, fleet)
	other := newEnv("other")
	providertest.DestroyOnCleanup(t, p, other)
	_, err := p.Apply(t.Context(), other) // builds the image the stranger is made from
	require.NoError(t, err)
	obs, err := p.Observe(t.Context(), other)
	require.NoError(t, err)

	name := "appfleet-" + fleet + "-dev"
	res, err := cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{Name: name,
		Config: &container.Config{Image: obs.Detail["image"], Labels: map[string]string{"owner": "someone-else"}}})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = cli.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
	})

	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"apply", func() error { _, err := p.Apply(t.Context(), newEnv("dev")); return err }},
		{"observe", func() error { _, err := p.Observe(t.Context(), newEnv("dev")); return err }},
		{"destroy", func() error { return p.Destroy(t.Context(), newEnv("dev")) }},
	} {
		err := op.run()
		require.Error(t, err, op.name)
		assert.Contains(t, err.Error(), `environment "dev"`, op.name)
		assert.Contains(t, err.Error(), "a container named "+name+" exists", op.name)
		assert.Contains(t, err.Error(), "never adopts or removes what it did not create", op.name)
	}
	got, err := cli.ContainerInspect(t.Context(), name, client.ContainerInspectOptions{})
	require.NoError(t, err, "the stranger is still there")
	assert.Equal(t, res.ID, got.Container.ID)
	assert.Equal(t, "someone-else", got.Container.Config.Labels["owner"])
}

// TestUnreachableHostFailsOnlyItsEnvironment: with the CLI, an environment whose host does not answer is
// an error for that environment, while the others apply; the apply exits 3.
func TestUnreachableHostFailsOnlyItsEnvironment(t *testing.T) {
	cli := engine(t)
	fleet := uniqueFleet(t, cli)
	dir := filepath.Join(t.TempDir(), fleet)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	manifests := `apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: good}
spec: {provider: docker}
---
apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: gone}
spec:
  provider: docker
  docker: {host: "tcp://` + closedPort(t) + `"}
---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: kept}
spec:
  environment: good
  collections: [{name: items, fields: [{name: title, type: string}]}]
---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: stranded}
spec:
  environment: gone
  collections: [{name: items, fields: [{name: title, type: string}]}]
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(manifests), 0o600))
	t.Cleanup(func() { appfleet(t, binary, dir, "destroy", "--yes", "--target", "environment.good") })

	r := appfleet(t, binary, dir, "apply", "--yes")
	require.Equal(t, 3, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	out := r.stdout + r.stderr
	assert.Contains(t, out, "environment.gone")
	assert.Contains(t, out, "does not answer")
	ep := endpointOf(t, binary, dir, "good")
	eventuallyRecords(t, ep+"/apps/kept/api/items", 0)
}

// TestDeclaredEndpoint: spec.docker.endpoint replaces the URL derived from the published port, and
// changing it changes nothing on the host (it is how this machine reaches the runtime).
func TestDeclaredEndpoint(t *testing.T) {
	cli := engine(t)
	p := newProvider(t, uniqueFleet(t, cli))
	addr := closedPort(t)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	env := newEnv("dev")
	env.Spec.Docker.Publish = addr
	env.Spec.Docker.Endpoint = "http://localhost:" + port + "/"
	t.Cleanup(func() { _ = p.Destroy(context.Background(), env) })
	ep, err := p.Apply(t.Context(), env)
	require.NoError(t, err)
	assert.Equal(t, "http://localhost:"+port, ep.URL)
	obs, err := p.Observe(t.Context(), env)
	require.NoError(t, err)
	assert.Equal(t, ep, obs.Endpoint)
	assert.Equal(t, env.SpecHash(), obs.SpecHash)

	moved := env
	d := *env.Spec.Docker
	d.Endpoint = "http://127.0.0.1:" + port
	moved.Spec.Docker = &d
	obs, err = p.Observe(t.Context(), moved)
	require.NoError(t, err)
	assert.Equal(t, moved.SpecHash(), obs.SpecHash, "a new endpoint is no change of the container")
	assert.Empty(t, obs.Changes)
	assert.Equal(t, "http://127.0.0.1:"+port, obs.Endpoint.URL)
}
