package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Kinds of notifications: the transitions the daemon reports.
const (
	SyncFailed = "sync_failed" // a commit was refused or its apply failed
	Recovered  = "recovered"   // a commit applied after a failure
	Drift      = "drift"       // an app no longer matches its manifest
	Healed     = "healed"      // drift was put back
)

// Message is one notification.
type Message struct {
	// Key identifies the transition; a key already sent is not sent again.
	Key string `json:"-"`
	// Text is what a chat shows.
	Text string `json:"text"`
	// Details are for programs.
	Details Details `json:"appfleet"`
}

// Details of a Message.
type Details struct {
	Kind    string    `json:"kind"`
	Fleet   string    `json:"fleet,omitempty"`
	Commit  string    `json:"commit,omitempty"`
	Address string    `json:"address,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	Time    time.Time `json:"time"`
}

// Retries of a delivery: attempts in all, and the first and largest wait between them.
const (
	attempts  = 6
	firstWait = time.Second
	maxWait   = time.Minute
	// keepKeys bounds how many sent keys are remembered.
	keepKeys = 4096
)

// Notifier posts messages to every URL.
type Notifier struct {
	urls   []string
	client *http.Client
	log    *slog.Logger
	// Wait is the first wait between delivery attempts (tests shorten it); it doubles up to a minute.
	Wait time.Duration

	mu    sync.Mutex
	sent  map[string]bool
	order []string
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc
}

// New returns a notifier for urls (none: Send does nothing).
func New(urls []string, log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Notifier{urls: urls, client: &http.Client{Timeout: 10 * time.Second}, log: log, Wait: firstWait,
		sent: map[string]bool{}, ctx: ctx, stop: stop}
}

// Send queues m for every URL unless its key was sent before; it reports whether it was queued.
func (n *Notifier) Send(m Message) bool {
	n.mu.Lock()
	if n.sent[m.Key] {
		n.mu.Unlock()
		return false
	}
	n.sent[m.Key] = true
	n.order = append(n.order, m.Key)
	if len(n.order) > keepKeys {
		delete(n.sent, n.order[0])
		n.order = n.order[1:]
	}
	n.mu.Unlock()
	if m.Details.Time.IsZero() {
		m.Details.Time = time.Now().UTC()
	}
	body, err := json.Marshal(m)
	if err != nil {
		return false
	}
	for _, u := range n.urls {
		n.wg.Go(func() { n.deliver(u, body, m.Details.Kind) })
	}
	return true
}

// deliver posts body to u, retrying with backoff until it is accepted (2xx), refused for good (4xx other
// than 408 and 429) or the notifier is closed.
func (n *Notifier) deliver(u string, body []byte, kind string) {
	wait := n.Wait
	for attempt := 1; ; attempt++ {
		err := n.post(u, body)
		if err == nil {
			return
		}
		var perm permanent
		if attempt == attempts || errors.As(err, &perm) {
			n.log.Warn("notification not delivered", "url", u, "kind", kind, "attempts", attempt, "error", err)
			return
		}
		n.log.Info("notification delivery failed; retrying", "url", u, "kind", kind, "attempt", attempt, "retryIn", wait, "error", err)
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, maxWait)
	}
}

type permanent struct{ status int }

func (p permanent) Error() string { return fmt.Sprintf("the webhook refused it with %d", p.status) }

func (n *Notifier) post(u string, body []byte) error {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return permanent{}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return permanent{resp.StatusCode}
	default:
		return fmt.Errorf("the webhook answered %d", resp.StatusCode)
	}
}

// Close waits up to timeout for deliveries in flight, then abandons the rest.
func (n *Notifier) Close(timeout time.Duration) {
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
	n.stop()
	<-done
}
