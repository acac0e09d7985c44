package apphost_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hammer sends GETs of url from conns clients, each on its own keep-alive connection, until ctx ends,
// and counts the answers by status.
func hammer(ctx context.Context, url string, conns int) (func() map[int]int64, *sync.WaitGroup) {
	var mu sync.Mutex
	counts := map[int]int64{}
	var wg sync.WaitGroup
	for range conns {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		wg.Go(func() {
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := c.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if ctx.Err() == nil {
					mu.Lock()
					counts[resp.StatusCode]++
					mu.Unlock()
				}
			}
		})
	}
	return func() map[int]int64 {
		mu.Lock()
		defer mu.Unlock()
		out := map[int]int64{}
		for k, v := range counts {
			out[k] = v
		}
		return out
	}, &wg
}

// An app's share of a busy runtime does not depend on how many connections it opens. The runtime
// runs one handler at a time (--max-running 1), and every request holds it for 8 ms (the hold test
// hook), so the test measures the order of admission and not the CPU of this shared machine: app A
// floods with 16 connections, app B sends from 3, and B is served about as often as A. In the order
// requests arrive, B would get 3 turns in 19. Management and health answer at once meanwhile.
func TestFairShareUnderFlood(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "", "--max-running", "1")
	put(t, p, "busy", appSpec(customers()))
	put(t, p, "quiet", appSpec(customers()))
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
	defer cancel()
	busy, wgA := hammer(ctx, "http://"+p.addr+"/apps/busy/api/_test/hold?ms=8", 16)
	time.Sleep(200 * time.Millisecond) // A's queue is full before B comes
	quiet, wgB := hammer(ctx, "http://"+p.addr+"/apps/quiet/api/_test/hold?ms=8", 3)

	time.Sleep(time.Second)
	var worst time.Duration
	for range 10 {
		start := time.Now()
		code, _ := p.do(http.MethodGet, "/healthz", "", nil)
		require.Equal(t, http.StatusOK, code)
		_, err := p.client.ListApps(t.Context())
		require.NoError(t, err)
		worst = max(worst, time.Since(start))
		time.Sleep(100 * time.Millisecond)
	}
	assert.Less(t, worst, time.Second, "management and health are not held up by app traffic")
	wgA.Wait()
	wgB.Wait()

	a, b := busy(), quiet()
	t.Logf("served: busy (16 connections) %v, quiet (3 connections) %v", a, b)
	require.Positive(t, a[http.StatusOK])
	share := float64(b[http.StatusOK]) / float64(a[http.StatusOK])
	assert.Greater(t, share, 0.6, "the quiet app is served about as often as the flooded one (in arrival order it would be 0.19)")
	assert.Zero(t, a[http.StatusServiceUnavailable]+b[http.StatusServiceUnavailable], "16 waiting requests are within the queue's bound")

	code, body := p.do(http.MethodGet, "/metrics", p.token, nil)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `appfleet_app_queue_wait_seconds_bucket{app="busy",le="0.0005"}`)
	assert.Contains(t, string(body), `appfleet_app_rejected_total{app="busy",cause="queue_full"} 0`)
}

// Past its queue's bound an app's requests are refused at once with 503 and Retry-After, counted by
// cause, while the other apps are served.
func TestQueueBoundRefuses(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "", "--queue-depth", "1", "--queue-timeout", "300ms")
	put(t, p, "slow", appSpec(customers()))
	put(t, p, "calm", appSpec(customers()))

	var wg sync.WaitGroup
	codes := make([]int, 2)
	// The first holds slow's one turn for 1.5 s; the second waits for it and times out after 300 ms.
	for i := range 2 {
		wg.Go(func() { codes[i], _ = p.do(http.MethodGet, "/apps/slow/api/_test/hold?ms=1500", "", nil) })
		time.Sleep(100 * time.Millisecond)
	}
	// A third, while the second waits, finds the queue full.
	req, err := http.NewRequest(http.MethodGet, "http://"+p.addr+"/apps/slow/api/customers", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Equal(t, api.CodeLimitExceeded, errorCode(t, body).Code)
	assert.Contains(t, errorCode(t, body).Message, "waiting for their turn")

	code, _ := p.do(http.MethodGet, "/apps/calm/api/customers", "", nil)
	assert.Equal(t, http.StatusOK, code, "another app is served meanwhile")
	wg.Wait()
	assert.Equal(t, []int{http.StatusOK, http.StatusServiceUnavailable}, codes)

	code, body = p.do(http.MethodGet, "/metrics", p.token, nil)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `appfleet_app_rejected_total{app="slow",cause="queue_full"} 1`)
	assert.Contains(t, string(body), `appfleet_app_rejected_total{app="slow",cause="queue_timeout"} 1`)
	a, err := p.client.GetApp(t.Context(), "slow")
	require.NoError(t, err)
	assert.EqualValues(t, 2, a.Stats.Rejected)
}

// limits.requestsPerSecond is a hard cap: past the burst, requests answer 429 with Retry-After.
func TestRequestRateLimit(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	s := appSpec(customers())
	s.Limits.RequestsPerSecond = 1
	s.Limits.Burst = 3
	put(t, p, "capped", s)
	put(t, p, "free", appSpec(customers()))

	var codes []int
	var retry string
	for range 5 {
		req, err := http.NewRequest(http.MethodGet, "http://"+p.addr+"/apps/capped/api/customers", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			retry = resp.Header.Get("Retry-After")
			assert.Contains(t, errorCode(t, body).Message, "at most 1 requests per second (burst 3)")
		}
	}
	assert.Equal(t, []int{200, 200, 200, 429, 429}, codes[:5])
	n, err := strconv.Atoi(retry)
	require.NoError(t, err, "Retry-After %q", retry)
	assert.True(t, n >= 1 && n <= 1, "Retry-After is when a token is back, here 1 s; got %d", n)
	code, _ := p.do(http.MethodGet, "/apps/free/api/customers", "", nil)
	assert.Equal(t, http.StatusOK, code)

	// A new spec without the cap lifts it at once.
	put(t, p, "capped", appSpec(customers()))
	code, _ = p.do(http.MethodGet, "/apps/capped/api/customers", "", nil)
	assert.Equal(t, http.StatusOK, code)
	code, body := p.do(http.MethodGet, "/metrics", p.token, nil)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `appfleet_app_rejected_total{app="capped",cause="rate"} 2`)

	bad := appSpec(customers())
	bad.Limits.Burst = 5
	code, body = p.do(http.MethodPut, "/v1/apps/capped", p.token, api.PutAppRequest{Spec: bad})
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, string(body), "limits.burst: 5 needs limits.requestsPerSecond")
}

// A client that trickles its body holds none of its app's limits.maxInFlight slots meanwhile, and is
// cut off after the read timeout; so is one that trickles its headers.
func TestSlowClientHoldsNoSlot(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "", "--read-timeout", "1s")
	s := appSpec(customers())
	s.Limits.MaxInFlight = 1
	put(t, p, "guarded", s)

	body := `{"name":"trickled"}`
	conn, err := net.Dial("tcp", p.addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /apps/guarded/api/customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:3])
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // the handler is reading the body

	for range 3 {
		code, out := p.do(http.MethodGet, "/apps/guarded/api/customers", "", nil)
		assert.Equal(t, http.StatusOK, code, "the trickling client holds no slot: %s", out)
	}
	a, err := p.client.GetApp(t.Context(), "guarded")
	require.NoError(t, err)
	assert.Zero(t, a.Stats.InFlight)

	// The rest never comes: after the read timeout the client is answered 408 and cut off.
	start := time.Now()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
	assert.Less(t, time.Since(start), 5*time.Second)
	_, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	_, err = conn.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the connection is closed")

	// Headers that never end are cut off after the read timeout too.
	slow, err := net.Dial("tcp", p.addr)
	require.NoError(t, err)
	defer slow.Close()
	_, err = io.WriteString(slow, "GET /apps/guarded/api/customers HTTP/1.1\r\nHost: x\r\n")
	require.NoError(t, err)
	var cut atomic.Bool
	go func() {
		for range 40 {
			if _, err := io.WriteString(slow, "X-Slow: 1\r\n"); err != nil {
				cut.Store(true)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	require.NoError(t, slow.SetReadDeadline(time.Now().Add(10*time.Second)))
	start = time.Now()
	_, err = io.ReadAll(slow)
	assert.NoError(t, err, "the runtime closes the connection")
	assert.Less(t, time.Since(start), 5*time.Second)
}

// The data API routes with patterns: a known path with another method is 405 with Allow, an unknown
// one 404, both as JSON; a path that is not clean is not redirected out of the app.
func TestDataRoutes(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	put(t, p, "shop", appSpec(customers()))
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodPut, "/apps/shop/api/customers/2", http.StatusMethodNotAllowed, "DELETE, GET, HEAD, PATCH"},
		{http.MethodDelete, "/apps/shop/api/customers", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodPost, "/apps/shop/openapi.json", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/apps/shop/nothing", http.StatusNotFound, ""},
		{http.MethodGet, "/apps/shop/api//customers", http.StatusNotFound, ""},
		{http.MethodGet, "/apps/shop/api/customers/x", http.StatusNotFound, ""},
		{http.MethodGet, "/apps/shop/api/nothing", http.StatusNotFound, ""},
	} {
		req, err := http.NewRequest(tc.method, "http://"+p.addr+tc.path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, tc.status, resp.StatusCode, "%s %s: %s", tc.method, tc.path, body)
		assert.Equal(t, tc.allow, resp.Header.Get("Allow"), "%s %s", tc.method, tc.path)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %s", tc.method, tc.path)
		if tc.status == http.StatusMethodNotAllowed {
			assert.Equal(t, api.CodeMethod, errorCode(t, body).Code)
		}
	}
	code, body := p.do(http.MethodGet, "/api/customers", "", nil, api.HeaderApp, "shop")
	assert.Equal(t, http.StatusOK, code, string(body))
}
