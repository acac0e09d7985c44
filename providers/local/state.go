package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// File and directory names inside an environment's directory.
const (
	dirData   = "data"
	fileState = "runtime.json"
	fileToken = "token"
	fileLog   = "runtime.log"
)

// runtimeState is runtime.json: what the provider knows of the runtime it last started.
type runtimeState struct {
	Fleet       string `json:"fleet"`
	Environment string `json:"environment"`
	PID         int    `json:"pid"`
	// Listen is the address the runtime was told to listen on; when the manifest declares none it is the
	// free port chosen at first start, kept so that the endpoint stays the same across restarts.
	Listen   string `json:"listen"`
	SpecHash string `json:"specHash"`
	// Spec is the environment's spec the runtime was started with (absent in files of older releases).
	Spec      *spec.EnvironmentSpec `json:"spec,omitempty"`
	StartedAt time.Time             `json:"startedAt"`
	Binary    string                `json:"binary"`
	DataDir   string                `json:"dataDir"`
}

// envDirs are the paths of one environment's files.
type envDirs struct {
	root, data, state, token, log string
}

func newEnvDirs(stateDir, name string) envDirs {
	root := filepath.Join(stateDir, providers.DirEnvironments, name)
	return envDirs{
		root:  root,
		data:  filepath.Join(root, dirData),
		state: filepath.Join(root, fileState),
		token: filepath.Join(root, fileToken),
		log:   filepath.Join(root, fileLog),
	}
}

// readState reads runtime.json; ok is false when there is none.
func readState(path string) (st runtimeState, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return runtimeState{}, false, nil
	}
	if err != nil {
		return runtimeState{}, false, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return runtimeState{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	return st, true, nil
}

// writeState replaces runtime.json atomically, so a reader never sees half a file.
func writeState(path string, st runtimeState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), fileState+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
