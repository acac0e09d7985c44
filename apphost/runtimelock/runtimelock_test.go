package runtimelock_test

import (
	"os"
	"testing"

	"github.com/appfleet/appfleet/apphost/runtimelock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAcquireRecordReadRelease(t *testing.T) {
	dir := t.TempDir()
	l, err := runtimelock.Acquire(dir)
	require.NoError(t, err)
	require.NoError(t, l.SetAddress("127.0.0.1:7410"))

	info, held, err := runtimelock.Read(dir)
	require.NoError(t, err)
	require.True(t, held)
	assert.Equal(t, os.Getpid(), info.PID)
	assert.Equal(t, "127.0.0.1:7410", info.Address)
	assert.Equal(t, l.Info().Instance, info.Instance)

	// flock is per open file, so even this process cannot take it twice.
	_, err = runtimelock.Acquire(dir)
	require.ErrorIs(t, err, runtimelock.ErrHeld)
	var he *runtimelock.HeldError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, info, he.Holder)
	assert.Contains(t, err.Error(), "listening on 127.0.0.1:7410")

	require.NoError(t, l.Release())
	require.NoError(t, l.Release(), "a second release is harmless")
	_, held, err = runtimelock.Read(dir)
	require.NoError(t, err)
	assert.False(t, held)

	l2, err := runtimelock.Acquire(dir)
	require.NoError(t, err)
	assert.NotEqual(t, info.Instance, l2.Info().Instance)
	require.NoError(t, l2.Release())
}
