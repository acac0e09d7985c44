package notify

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSendOncePerKeyAndRetry(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var got []Message
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable) // the first two deliveries fail
			return
		}
		var m Message
		require.NoError(t, json.NewDecoder(r.Body).Decode(&m))
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	defer srv.Close()
	n := New([]string{srv.URL}, nil)
	n.Wait = 10 * time.Millisecond
	m := Message{Key: "drift/abc/app.crm", Text: "drift in app.crm", Details: Details{Kind: Drift, Address: "app.crm", Commit: "abc"}}
	assert.True(t, n.Send(m))
	assert.False(t, n.Send(m), "a key is sent once")
	n.Close(10 * time.Second)
	require.Len(t, got, 1)
	assert.Equal(t, "drift in app.crm", got[0].Text)
	assert.Equal(t, "app.crm", got[0].Details.Address)
	assert.Equal(t, int32(3), calls.Load(), "delivered on the third attempt")
}

func TestPermanentRefusalIsNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		http.Error(w, "gone", http.StatusGone)
	}))
	defer srv.Close()
	n := New([]string{srv.URL}, nil)
	n.Wait = 10 * time.Millisecond
	n.Send(Message{Key: "k", Text: "t", Details: Details{Kind: SyncFailed}})
	n.Close(10 * time.Second)
	assert.Equal(t, int32(1), calls.Load())
}
