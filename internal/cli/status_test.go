package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/plan"
)

func TestBuildStatus_Apps(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(`apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: dev}
spec: {provider: local}
---
apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: prod}
spec: {provider: local}
---
apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: stage}
spec: {provider: local}
---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: crm}
spec: {environment: dev}
---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: ledger}
spec: {environment: prod}
---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: wiki}
spec: {environment: stage, state: stopped}
`), 0o644))
	io, _, _, _ := TestIO(false)
	m, err := loadManifests(&Factory{IO: io, StateDir: t.TempDir()}, []string{dir}, noSecrets)
	require.NoError(t, err)
	snap := plan.Snapshot{Fleet: "x", Environments: map[string]plan.EnvironmentState{
		"dev": {Name: "dev", Provider: "local", Exists: true, Running: true, Reachable: true,
			Apps: []api.App{{Name: "crm", Status: api.StatusStopped, Generation: 3}}},
		"prod":  {Name: "prod", Provider: "local", Exists: true, Running: false},
		"stage": {Name: "stage", Provider: "local"},
		"qa":    {Name: "qa", Provider: "docker", Error: "provider \"docker\" is not available in this build"},
	}}
	rep := buildStatus(m, snap)
	got := map[string]appStatus{}
	for _, a := range rep.Apps {
		got[a.Name] = a
	}
	tests := []struct {
		app, status, desired string
	}{
		{"crm", api.StatusStopped, "running"},
		{"ledger", "unknown", "running"}, // its runtime is down: it may be there
		{"wiki", "absent", "stopped"},    // its environment does not exist
	}
	for _, tt := range tests {
		assert.Equal(t, tt.status, got[tt.app].Status, tt.app)
		assert.Equal(t, tt.desired, got[tt.app].Desired, tt.app)
	}
	health := map[string]string{}
	for _, e := range rep.Environments {
		health[e.Name] = e.Health
	}
	assert.Equal(t, map[string]string{"dev": "healthy", "prod": "stopped", "stage": "absent", "qa": "unknown"}, health,
		"an environment that could not be observed is unknown, not absent")
}
