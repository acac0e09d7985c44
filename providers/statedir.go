package providers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
)

// Directory names under a fleet's state dir that every provider shares.
const (
	DirEnvironments = "environments"
	DirArchive      = "archive"
)

// EnvDir returns <stateDir>/environments/<name>, where a provider keeps one environment's files. It
// refuses a name that would escape the state dir (the manifest validator already requires DNS labels;
// this guards callers that skip it).
func EnvDir(stateDir, name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("environment %q: not a valid environment name", name)
	}
	return filepath.Join(stateDir, DirEnvironments, name), nil
}

// ArchiveEnvDir moves an environment's directory, data included, to a new
// <stateDir>/archive/environments/<name>-<UTC time> directory and returns that path. Nothing is deleted:
// moving the directory back restores the environment. A directory that does not exist is not an error
// and gives "".
func ArchiveEnvDir(stateDir, name string) (string, error) {
	dir, err := EnvDir(stateDir, name)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	parent := filepath.Join(stateDir, DirArchive, DirEnvironments)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", fmt.Errorf("archive: %w", err)
	}
	base := filepath.Join(parent, name+"-"+time.Now().UTC().Format("20060102T150405Z"))
	path := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			break
		}
		path = base + "-" + strconv.Itoa(i)
	}
	if err := os.Rename(dir, path); err != nil {
		return "", fmt.Errorf("archive: %w", err)
	}
	return path, nil
}

// ErrExited is what WaitReady returns when the runtime's process ended before it answered.
var ErrExited = errors.New("runtime exited before it was ready")

// WaitReady polls GET /readyz until it answers 200, ctx ends, bound passes, or exited (checked between
// probes; nil means never) reports that the process is gone.
func WaitReady(ctx context.Context, url, token string, exited func() error, bound time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	client := api.NewClient(url, token)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		probe, cancelProbe := context.WithTimeout(ctx, time.Second)
		last := client.Ready(probe)
		cancelProbe()
		if last == nil {
			return nil
		}
		if exited != nil {
			if err := exited(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("runtime did not answer %s/readyz within %s (last: %v)", url, bound, last)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// archivedName matches the archive directories ArchiveEnvDir makes: <name>-<UTC time>[-<n>].
var archivedName = regexp.MustCompile(`^(.+)-\d{8}T\d{6}Z(-\d+)?$`)

// PurgeArchivedEnvDirs removes, for good, the directories ArchiveEnvDir made of environment name (and
// of no other, even one whose name starts alike), and returns their paths.
func PurgeArchivedEnvDirs(stateDir, name string) ([]string, error) {
	if _, err := EnvDir(stateDir, name); err != nil {
		return nil, err
	}
	parent := filepath.Join(stateDir, DirArchive, DirEnvironments)
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	var removed []string
	for _, e := range entries {
		m := archivedName.FindStringSubmatch(e.Name())
		if m == nil || m[1] != name || !e.IsDir() {
			continue
		}
		path := filepath.Join(parent, e.Name())
		if err := os.RemoveAll(path); err != nil {
			return removed, fmt.Errorf("purge %s: %w", path, err)
		}
		removed = append(removed, path)
	}
	return removed, nil
}
