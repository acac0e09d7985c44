package docker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/spec"
)

// cliRun is one run of the appfleet binary.
type cliRun struct {
	stdout, stderr string
	code           int
}

// appfleet runs the binary bin in dir with args, as a user would, and returns what it printed.
func appfleet(t *testing.T, bin, dir string, args ...string) cliRun {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliRun{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run appfleet %v: %v", args, err)
	}
	return r
}

// must runs appfleet and requires exit code 0.
func must(t *testing.T, bin, dir string, args ...string) cliRun {
	t.Helper()
	r := appfleet(t, bin, dir, args...)
	require.Equal(t, 0, r.code, "appfleet %v\nstdout:\n%s\nstderr:\n%s", args, r.stdout, r.stderr)
	return r
}

// exampleCopy copies an example into a directory named after a fleet no other test uses, so that the
// fleet (named after the directory) owns only what this test creates, and returns the directory.
func exampleCopy(t *testing.T, cli *client.Client, example string) (dir, fleet string) {
	t.Helper()
	fleet = uniqueFleet(t, cli)
	dir = filepath.Join(t.TempDir(), fleet)
	require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "examples", example))))
	return dir, fleet
}

// endpointOf returns the management API URL of env as `appfleet status -o json` reports it.
func endpointOf(t *testing.T, bin, dir, env string) string {
	t.Helper()
	r := must(t, bin, dir, "status", "-o", "json")
	var st struct {
		Environments []struct {
			Name, Endpoint, Health string
		} `json:"environments"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
	for _, e := range st.Environments {
		if e.Name == env {
			require.NotEmpty(t, e.Endpoint, "status gives environment %s an endpoint: %s", env, r.stdout)
			return e.Endpoint
		}
	}
	t.Fatalf("status shows no environment %s: %s", env, r.stdout)
	return ""
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// request sends one data API request and returns the status and body.
func request(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// eventuallyRecords waits until the app's collection lists want records (an app comes back to running a
// moment after its runtime answers) and returns the body.
func eventuallyRecords(t *testing.T, url string, want int) string {
	t.Helper()
	var body string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, b := request(t, http.MethodGet, url, "")
		body = b
		require.Equal(c, http.StatusOK, code, b)
		var list struct {
			Total int `json:"total"`
		}
		require.NoError(c, json.Unmarshal([]byte(b), &list))
		require.Equal(c, want, list.Total, b)
	}, 20*time.Second, 100*time.Millisecond)
	return body
}

func containerOf(t *testing.T, cli *client.Client, name string) (id string, memory int64) {
	t.Helper()
	res, err := cli.ContainerInspect(t.Context(), name, client.ContainerInspectOptions{})
	require.NoError(t, err)
	return res.Container.ID, res.Container.HostConfig.Memory
}

func replaceIn(t *testing.T, file, old, new string) {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Contains(t, string(b), old)
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(string(b), old, new, 1)), 0o600))
}

// TestExampleEndToEnd drives examples/docker with the binary, as a user would: apply, data through the
// published port, a killed container, limits changed in place, settings that replace the container, a
// new appfleet binary, a fresh checkout without .appfleet, destroy and a new life that starts empty.
func TestExampleEndToEnd(t *testing.T) {
	cli := engine(t)
	dir, fleet := exampleCopy(t, cli, "docker")
	ctr := "appfleet-" + fleet + "-dev"
	envFile := filepath.Join(dir, "environment.yaml")

	must(t, binary, dir, "validate")
	r := must(t, binary, dir, "plan")
	assert.Contains(t, r.stdout, "create (docker runtime)")
	must(t, binary, dir, "apply", "--yes")
	ep := endpointOf(t, binary, dir, "dev")
	assert.Regexp(t, `^http://127\.0\.0\.1:\d+$`, ep, "published on the host's loopback by default")
	notes := ep + "/apps/notes/api/notes"
	code, body := request(t, http.MethodPost, notes, `{"title": "kept"}`)
	require.Equal(t, http.StatusCreated, code, body)
	code, body = request(t, http.MethodGet, ep+"/apps/tasks/api/_settings", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "kanban")
	firstID, memory := containerOf(t, cli, ctr)
	assert.Equal(t, int64(256<<20), memory)

	// docker kill: the next apply finds it running again (Docker's restart policy) or starts it.
	_, err := cli.ContainerKill(t.Context(), ctr, client.ContainerKillOptions{Signal: "KILL"})
	require.NoError(t, err)
	must(t, binary, dir, "apply", "--yes")
	ep = endpointOf(t, binary, dir, "dev")
	assert.Contains(t, eventuallyRecords(t, ep+"/apps/notes/api/notes", 1), "kept")

	// The health check is the binary itself (the image has no shell): the container becomes healthy.
	require.Eventually(t, func() bool {
		res, err := cli.ContainerInspect(t.Context(), ctr, client.ContainerInspectOptions{})
		return err == nil && res.Container.State.Health != nil && res.Container.State.Health.Status == "healthy"
	}, 60*time.Second, 500*time.Millisecond, "the container's health check passes")

	// docker rm -f: the next apply creates the container again on the volume it left, data kept.
	_, err = cli.ContainerRemove(t.Context(), ctr, client.ContainerRemoveOptions{Force: true})
	require.NoError(t, err)
	r = appfleet(t, binary, dir, "plan", "--detailed-exitcode")
	require.Equal(t, 2, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "+ environment.dev")
	must(t, binary, dir, "apply", "--yes")
	ep = endpointOf(t, binary, dir, "dev")
	assert.Contains(t, eventuallyRecords(t, ep+"/apps/notes/api/notes", 1), "kept")
	firstID, _ = containerOf(t, cli, ctr)

	// memory: the plan says the container is updated in place, and it is: same container, new limit.
	replaceIn(t, envFile, "memory: 256Mi", "memory: 384Mi")
	r = appfleet(t, binary, dir, "plan", "--detailed-exitcode")
	require.Equal(t, 2, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, `~ docker.memory`)
	assert.Contains(t, r.stdout, `"256Mi" -> "384Mi"`)
	assert.Contains(t, r.stdout, "container."+ctr)
	assert.Contains(t, r.stdout, "update (memory changed in place, no restart)")
	must(t, binary, dir, "apply", "--yes")
	id, memory := containerOf(t, cli, ctr)
	assert.Equal(t, firstID, id, "a limit is changed in place")
	assert.Equal(t, int64(384<<20), memory)
	must(t, binary, dir, "plan", "--detailed-exitcode")

	// maxApps: a runtime flag, so the container is replaced, on the same volume.
	replaceIn(t, envFile, "maxApps: 50", "maxApps: 60")
	r = must(t, binary, dir, "plan")
	assert.Contains(t, r.stdout, "replace (settings changed, apps and data kept)")
	must(t, binary, dir, "apply", "--yes")
	id, _ = containerOf(t, cli, ctr)
	assert.NotEqual(t, firstID, id, "the container is replaced")
	ep = endpointOf(t, binary, dir, "dev")
	assert.Contains(t, eventuallyRecords(t, ep+"/apps/notes/api/notes", 1), "kept")

	// A new appfleet binary: a new image, and the plan calls the replacement a runtime upgrade.
	upgraded := filepath.Join(t.TempDir(), "appfleet")
	b, err := os.ReadFile(binary)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(upgraded, append(b, []byte("\x00appfleet-upgrade-"+fleet)...), 0o755))
	t.Cleanup(func() { removeImagesOf(cli, upgraded) })
	r = must(t, upgraded, dir, "plan")
	assert.Contains(t, r.stdout, "replace (runtime upgrade: image appfleet-runtime:")
	must(t, upgraded, dir, "apply", "--yes")
	ep = endpointOf(t, upgraded, dir, "dev")
	assert.Contains(t, eventuallyRecords(t, ep+"/apps/notes/api/notes", 1), "kept")

	// A fresh checkout: no .appfleet, and nothing to change.
	require.NoError(t, os.RemoveAll(filepath.Join(dir, ".appfleet")))
	r = appfleet(t, upgraded, dir, "plan", "--detailed-exitcode")
	assert.Equal(t, 0, r.code, "a checkout without .appfleet plans no changes:\n%s%s", r.stdout, r.stderr)

	// Destroy: no container left, the volume's data archived; a new life starts empty.
	must(t, upgraded, dir, "destroy", "--yes")
	_, err = cli.ContainerInspect(t.Context(), ctr, client.ContainerInspectOptions{})
	assert.Error(t, err, "no container is left")
	_, err = cli.VolumeInspect(t.Context(), ctr+"-data", client.VolumeInspectOptions{})
	assert.Error(t, err, "the environment's volume is gone")
	vols, err := cli.VolumeList(t.Context(), client.VolumeListOptions{Filters: client.Filters{}.
		Add("label", spec.LabelFleet+"="+fleet, "appfleet.dev/archived")})
	require.NoError(t, err)
	require.Len(t, vols.Items, 1, "one archived volume holds the data")

	must(t, upgraded, dir, "apply", "--yes")
	ep = endpointOf(t, upgraded, dir, "dev")
	eventuallyRecords(t, ep+"/apps/notes/api/notes", 0)

	// destroy --purge: the second life archived too, then both archives removed for good.
	r = must(t, upgraded, dir, "destroy", "--purge", "--yes")
	assert.Regexp(t, `environment\.dev: purged `+ctr+`-data-archived-\d{8}T\d{6}Z`, r.stdout)
	vols, err = cli.VolumeList(t.Context(), client.VolumeListOptions{Filters: client.Filters{}.Add("label", spec.LabelFleet+"="+fleet)})
	require.NoError(t, err)
	assert.Empty(t, vols.Items, "no volume of the fleet is left after --purge")
}

// removeImagesOf removes the image built from bin, which only the test that made bin uses. Without force:
// an image a container still uses stays.
func removeImagesOf(cli *client.Client, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if sum := fileSHA256(bin); sum != "" {
		_, _ = cli.ImageRemove(ctx, "appfleet-runtime:"+sum[:12], client.ImageRemoveOptions{PruneChildren: true})
	}
}

func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	_, _ = io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// TestHybrid applies the whole of examples/hybrid with the binary: its local, docker and terraform
// environments and their apps (the terraform one runs the module of examples/terraform-local, copied
// beside it as in the repository). Without terraform on the PATH it applies the local and docker halves.
func TestHybrid(t *testing.T) {
	cli := engine(t)
	dir, fleet := exampleCopy(t, cli, "hybrid")
	replaceIn(t, filepath.Join(dir, "fleet.yaml"), "name: hybrid", "name: "+fleet)
	var targets []string
	if _, err := exec.LookPath("terraform"); err == nil {
		require.NoError(t, os.CopyFS(filepath.Join(filepath.Dir(dir), "terraform-local"), os.DirFS(filepath.Join("..", "..", "examples", "terraform-local"))))
	} else {
		t.Log("terraform is not on the PATH: only the local and docker halves are applied")
		targets = []string{"--target", "environment.staging", "--target", "app.inventory", "--target", "environment.edge", "--target", "app.portal"}
	}
	t.Cleanup(func() {
		// billing is protected, and destroy refuses a plan that would delete it: apply protect: false on
		// its own first, or every runtime of the example outlives the test.
		replaceIn(t, filepath.Join(dir, "apps", "billing.yaml"), "protect: true", "protect: false")
		r := appfleet(t, binary, dir, append([]string{"apply", "--yes"}, targets...)...)
		assert.Equal(t, 0, r.code, "unprotect billing:\n%s%s", r.stdout, r.stderr)
		r = appfleet(t, binary, dir, append([]string{"destroy", "--yes"}, targets...)...)
		assert.Equal(t, 0, r.code, "destroy the example:\n%s%s", r.stdout, r.stderr)
	})

	must(t, binary, dir, append([]string{"apply", "--yes"}, targets...)...)
	ep := endpointOf(t, binary, dir, "staging")
	items := ep + "/apps/inventory/api/items"
	code, body := request(t, http.MethodPost, items, `{"sku": "A-1", "stock": 3, "location": "north"}`)
	require.Equal(t, http.StatusCreated, code, body)
	id, memory := containerOf(t, cli, "appfleet-"+fleet+"-staging")
	assert.NotEmpty(t, id)
	assert.Equal(t, int64(512<<20), memory, "the example's memory limit")
	if targets == nil {
		invoices := endpointOf(t, binary, dir, "cloud") + "/apps/billing/api/invoices"
		code, body := request(t, http.MethodPost, invoices, `{"number": "2024-001", "total": 12.5}`)
		require.Equal(t, http.StatusCreated, code, body)
		eventuallyRecords(t, invoices, 1)
	}
	r := appfleet(t, binary, dir, append([]string{"plan", "--detailed-exitcode"}, targets...)...)
	assert.Equal(t, 0, r.code, "a second plan of the applied example changes nothing:\n%s%s", r.stdout, r.stderr)
	eventuallyRecords(t, items, 1)
}
