package spec

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadFS_ReadsLikeLoad(t *testing.T) {
	files := map[string]string{
		"fleet/env.yaml":          envDev,
		"fleet/apps/crm.yaml":     appDoc("crm", "dev"),
		"fleet/apps/notes.yml":    appDoc("notes", "dev"),
		"fleet/apps/README.md":    "not a manifest",
		"fleet/.hidden/x.yaml":    "this: [is not read",
		"other/ignored.yaml":      appDoc("other", "dev"),
		"fleet/apps/sub/shop.yml": appDoc("shop", "dev"),
	}
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	m, diags := LoadFS(fsys, []string{"fleet"}, LoadOptions{Name: "acme"})
	require.Empty(t, summaries(diags))
	assert.Equal(t, "acme", m.Name, "without a Fleet document the caller names the fleet")
	var names []string
	for _, a := range m.Apps {
		names = append(names, a.Metadata.Name)
	}
	assert.Equal(t, []string{"crm", "notes", "shop"}, names)
	assert.Equal(t, "fleet/apps/crm.yaml", m.Apps[0].Source.File, "files are named by their path inside the file system")

	// The same bytes under the same names give the same digest wherever they are read from.
	again, _ := LoadFS(fsys, []string{"fleet"}, LoadOptions{Name: "acme"})
	assert.Equal(t, m.Digest, again.Digest)
	fsys["fleet/apps/crm.yaml"] = &fstest.MapFile{Data: []byte(appDoc("crm", "dev") + "  state: stopped\n")}
	changed, diags := LoadFS(fsys, []string{"fleet"}, LoadOptions{Name: "acme"})
	require.Empty(t, summaries(diags))
	assert.NotEqual(t, m.Digest, changed.Digest)
}

func TestLoadFS_DiagnosticsNameThePathInside(t *testing.T) {
	fsys := fstest.MapFS{
		"fleet/env.yaml": {Data: []byte(envDev)},
		"fleet/app.yaml": {Data: []byte(appDoc("crm", "dev") + "  stat: running\n  drift: heel\n")},
	}
	_, diags := LoadFS(fsys, []string{"fleet"}, LoadOptions{})
	require.True(t, diags.HasErrors())
	got := summaries(diags)
	require.Len(t, got, 2, got)
	assert.Contains(t, got[0], "fleet/app.yaml:6:3: ")
	assert.Contains(t, got[0], `unknown field "stat"`)
	assert.Contains(t, got[1], "fleet/app.yaml:7:10: ")
	assert.Contains(t, got[1], `unknown drift policy "heel"`)
	assert.Contains(t, got[1], `did you mean "heal"`)

	_, diags = LoadFS(fsys, []string{"nowhere"}, LoadOptions{})
	require.True(t, diags.HasErrors())
	assert.Contains(t, summaries(diags)[0], "nowhere")
	_, diags = LoadFS(fstest.MapFS{"fleet/README.md": {Data: []byte("x")}}, []string{"fleet"}, LoadOptions{})
	assert.Contains(t, summaries(diags)[0], "no manifest files in fleet")
}

func TestLoadFS_RelativeSecretFilesResolveAgainstDir(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "fleet"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet", "key"), []byte("k-1\n"), 0o600))
	fsys := fstest.MapFS{
		"fleet/env.yaml": {Data: []byte(envDev)},
		"fleet/app.yaml": {Data: []byte(appDoc("crm", "dev") + "  apiKeys:\n    - {name: web, value: {fromFile: key}}\n")},
	}
	m, diags := LoadFS(fsys, []string{"fleet"}, LoadOptions{Dir: dir})
	require.Empty(t, summaries(diags))
	r, err := m.ResolveSecrets()
	require.NoError(t, err)
	assert.Equal(t, "k-1", r.Apps[0].Spec.APIKeys[0].Value.Value)
	assert.Equal(t, dir, m.Root)
}

func TestLoad_DriftPolicies(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"fleet.yaml": "apiVersion: appfleet.dev/v1alpha1\nkind: Fleet\nmetadata: {name: f}\nspec: {drift: heal}\n",
		"env.yaml":   envDev,
		"a.yaml":     appDoc("a", "dev") + "  drift: ignore\n",
		"b.yaml":     appDoc("b", "dev"),
	})
	m, diags := Load([]string{dir}, nil)
	require.Empty(t, summaries(diags))
	assert.Equal(t, DriftHeal, m.Fleet.Spec.Drift)
	assert.Equal(t, DriftIgnore, m.Apps[0].Spec.Drift)
	assert.Empty(t, m.Apps[1].Spec.Drift)

	dir = writeTree(t, map[string]string{
		"fleet.yaml": "apiVersion: appfleet.dev/v1alpha1\nkind: Fleet\nmetadata: {name: f}\nspec: {drift: always}\n",
	})
	_, diags = Load([]string{dir}, nil)
	require.True(t, diags.HasErrors())
	assert.Contains(t, summaries(diags)[0], `fleet.yaml:4:15: unknown drift policy "always" in Fleet "f"`)
}
