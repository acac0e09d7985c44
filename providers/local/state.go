//go:build unix

package local

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/appfleet/appfleet/apphost/runtimelock"
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
	// Instance is the id the runtime reported (GET /v1/runtime) once it answered; empty before.
	Instance string `json:"instance,omitempty"`
}

// current is what is known of the environment's runtime: runtime.json, corrected by the data dir's
// lock, which the kernel keeps for exactly as long as a runtime runs on that dir. A runtime.json that
// is lost, damaged or names another process does not hide a runtime that runs: the lock names its pid
// and address. ok is false when there is neither a state file nor a runtime; problem says what was
// wrong with runtime.json, for display.
func current(fleet, name string, d envDirs) (st runtimeState, running, ok bool, problem string) {
	st, ok, err := readState(d.state)
	if err != nil {
		problem = err.Error()
		st, ok = runtimeState{}, false
	}
	info, held, lerr := runtimelock.Read(d.data)
	if lerr != nil && problem == "" {
		problem = lerr.Error()
	}
	if !held {
		if !ok && problem != "" {
			if _, err := os.Stat(d.data); err == nil {
				// The state file is damaged and nothing runs: the environment exists, stopped; the next
				// apply starts it again and writes a new state file.
				return runtimeState{Fleet: fleet, Environment: name, DataDir: d.data}, false, true, problem
			}
		}
		return st, ok && alive(st.PID, d.data), ok, problem
	}
	if !ok {
		st = runtimeState{Fleet: fleet, Environment: name, DataDir: d.data}
		if problem == "" {
			problem = fmt.Sprintf("%s is missing", d.state)
		}
	}
	if st.PID != info.PID || (info.Address != "" && st.Listen != info.Address) {
		// What runs is not what runtime.json says (it is stale, or names a runtime started since by
		// someone else): its settings are unknown, so a plan shows them as changed.
		if ok {
			st.SpecHash, st.Spec = "", nil
		}
		st.PID, st.Listen, st.StartedAt = info.PID, cmp.Or(info.Address, st.Listen), info.Started
	}
	st.Instance = info.Instance
	return st, true, true, problem
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
