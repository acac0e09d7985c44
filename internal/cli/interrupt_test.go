package cli

import (
	"context"
	stdio "io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A command interrupted while it observes exits 130 and shows no plan or status: what it saw is
// incomplete, and a plan made from it would be wrong.
func TestInterruptedObservation(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "env.yaml"), []byte(`apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: dev}
spec: {provider: local}
`), 0o644))
	tests := []struct {
		name string
		args []string
	}{
		{"plan", []string{"plan", dir}},
		{"plan saved", []string{"plan", dir, "--out", filepath.Join(dir, "fleet.plan")}},
		{"plan detailed", []string{"plan", dir, "--detailed-exitcode"}},
		{"plan json", []string{"plan", dir, "-o", "json"}},
		{"apply", []string{"apply", dir, "--yes"}},
		{"destroy", []string{"destroy", dir, "--yes"}},
		{"status", []string{"status", dir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			io, _, out, errOut := TestIO(false)
			f := &Factory{IO: io, StateDir: filepath.Join(t.TempDir(), "state")}
			code := Run(ctx, f, tt.args)
			assert.Equal(t, ExitInterrupted, code, "stderr: %s", errOut)
			assert.Empty(t, out.String(), "nothing is shown from an incomplete observation")
			assert.Contains(t, errOut.String(), "interrupted")
			assert.NoFileExists(t, filepath.Join(dir, "fleet.plan"))
		})
	}
}

// Ctrl-C at the confirmation prompt ends the command at once, as interrupted, whether or not the
// person ever answers.
func TestConfirm_Interrupted(t *testing.T) {
	io, _, _, _ := TestIO(true)
	r, w := stdio.Pipe()
	t.Cleanup(func() { w.Close() })
	io.In = r
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := confirm(ctx, io, "Apply these changes?")
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrInterrupted)
		assert.Equal(t, ExitInterrupted, exitCode(err))
	case <-time.After(5 * time.Second):
		t.Fatal("confirm still waits for an answer after Ctrl-C")
	}
}

func TestConfirm_Answers(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"yes\n", true},
		{"  yes \r\n", true},
		{"y\n", false},
		{"YES\n", false},
		{"\n", false},
	}
	for _, tt := range tests {
		io, in, _, _ := TestIO(true)
		in.WriteString(tt.in)
		got, err := confirm(t.Context(), io, "Apply these changes?")
		require.NoError(t, err, "%q", tt.in)
		assert.Equal(t, tt.want, got, "%q", tt.in)
	}
}
