package providers_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/providers"
)

// Purging one environment's archives removes each of its lives, and nothing of an environment whose
// name starts alike, nor the environment's own directory.
func TestPurgeArchivedEnvDirs(t *testing.T) {
	state := t.TempDir()
	mk := func(name string) string {
		dir, err := providers.EnvDir(state, name)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o700))
		return dir
	}
	var archived []string
	for _, name := range []string{"dev", "dev", "dev-2"} {
		mk(name)
		path, err := providers.ArchiveEnvDir(state, name)
		require.NoError(t, err)
		archived = append(archived, path)
	}
	live := mk("dev")

	removed, err := providers.PurgeArchivedEnvDirs(state, "dev")
	require.NoError(t, err)
	assert.ElementsMatch(t, archived[:2], removed)
	for _, p := range archived[:2] {
		assert.NoDirExists(t, p)
	}
	assert.DirExists(t, archived[2], "dev-2's archive is not dev's")
	assert.DirExists(t, live, "the live environment is never purged")

	removed, err = providers.PurgeArchivedEnvDirs(state, "dev")
	require.NoError(t, err)
	assert.Empty(t, removed, "purging again finds nothing")
	_, err = providers.PurgeArchivedEnvDirs(state, "../x")
	assert.Error(t, err)
}
