package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/plan"
)

func TestReadSavedPlanArg(t *testing.T) {
	var saved bytes.Buffer
	require.NoError(t, plan.Save(&saved, &plan.Plan{Fleet: "acme", Actions: []*plan.Action{}}))
	good := saved.String()
	tests := []struct {
		name, content string
		isPlan        bool
		wantErr       string
	}{
		{"saved plan", good, true, ""},
		{"manifest", "apiVersion: appfleet.dev/v1alpha1\nkind: Environment\n", false, ""},
		{"json manifest", `{"apiVersion": "appfleet.dev/v1alpha1", "kind": "Environment"}`, false, ""},
		{"truncated plan", good[:len(good)/2], false, "is damaged or was not written by 'appfleet plan --out'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fleet.plan")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			p, file, err := readSavedPlanArg([]string{path})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.ErrorContains(t, err, path)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.isPlan, p != nil)
			if tt.isPlan {
				assert.Equal(t, path, file)
			}
		})
	}
}
