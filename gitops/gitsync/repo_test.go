package gitsync

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

func commitFiles(t *testing.T, dir, msg string, files map[string]string) string {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-q", "-m", msg)
	return runGit(t, dir, "rev-parse", "HEAD")
}

func TestFetchTreeAndForcePush(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	src := t.TempDir()
	runGit(t, src, "init", "-q", "-b", "main")
	runGit(t, src, "config", "user.email", "a@example.test")
	runGit(t, src, "config", "user.name", "A")
	c1 := commitFiles(t, src, "first\n\nbody", map[string]string{"fleet/a.yaml": "a: 1\n", "fleet/sub/b.yml": "b: 2\n", "README.md": "hi"})

	r, err := Open(Options{URL: src, Dir: filepath.Join(t.TempDir(), "clone.git")})
	require.NoError(t, err)
	head, err := r.Fetch(t.Context())
	require.NoError(t, err)
	assert.Equal(t, c1, head.Hash)
	assert.Equal(t, "first", head.Subject)
	assert.Equal(t, "file://"+src, r.URL())

	tree, err := r.Tree(head.Hash)
	require.NoError(t, err)
	var names []string
	require.NoError(t, fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if !d.IsDir() {
			names = append(names, p)
		}
		return nil
	}))
	assert.Equal(t, []string{"README.md", "fleet/a.yaml", "fleet/sub/b.yml"}, names)
	b, err := fs.ReadFile(tree, "fleet/sub/b.yml")
	require.NoError(t, err)
	assert.Equal(t, "b: 2\n", string(b))
	_, err = fs.ReadFile(tree, "fleet/missing.yaml")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	st, err := fs.Stat(tree, "fleet")
	require.NoError(t, err)
	assert.True(t, st.IsDir())

	// A force-push replaces the history: the head follows it.
	runGit(t, src, "reset", "-q", "--hard", "HEAD")
	require.NoError(t, os.WriteFile(filepath.Join(src, "fleet/a.yaml"), []byte("a: 3\n"), 0o644))
	runGit(t, src, "commit", "-q", "-a", "--amend", "-m", "rewritten")
	c2 := runGit(t, src, "rev-parse", "HEAD")
	head, err = r.Fetch(t.Context())
	require.NoError(t, err)
	assert.Equal(t, c2, head.Hash)
	tree, err = r.Tree(c2)
	require.NoError(t, err)
	b, err = fs.ReadFile(tree, "fleet/a.yaml")
	require.NoError(t, err)
	assert.Equal(t, "a: 3\n", string(b))

	// The old commit is still readable from the clone (a refused commit's diagnostics refer to it).
	_, err = r.Tree(c1)
	require.NoError(t, err)

	// Reopening keeps the clone; another URL starts afresh; a missing branch says so.
	again, err := Open(Options{URL: "file://" + src, Dir: r.opts.Dir})
	require.NoError(t, err)
	h, err := again.Head()
	require.NoError(t, err)
	assert.Equal(t, c2, h.Hash)
	other, err := Open(Options{URL: src, Branch: "prod", Dir: r.opts.Dir})
	require.NoError(t, err)
	_, err = other.Fetch(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `branch "prod" does not exist`)
}

func TestRedact(t *testing.T) {
	assert.Equal(t, "https://user@example.test/x.git", Redact("https://user:tok@example.test/x.git"))
	assert.Equal(t, "https://example.test/x.git", Redact("https://example.test/x.git"))
	_, err := Open(Options{URL: "ftp://example.test/x", Dir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unsupported scheme")
	_, err = Open(Options{URL: "ssh://git@example.test/x.git", Dir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--ssh-key")
}
