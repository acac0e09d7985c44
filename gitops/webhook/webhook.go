package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Sources of webhooks, as they appear in /hooks/{source}.
const (
	GitHub = "github"
	GitLab = "gitlab"
	Gitea  = "gitea"
)

// Sources lists every source Verify knows.
var Sources = []string{GitHub, GitLab, Gitea}

// MaxBody bounds a webhook's body; a push event of a large commit is well below it.
const MaxBody = 5 << 20

// ErrUnauthorized is what Verify's error wraps when the signature or token is missing or wrong.
var ErrUnauthorized = errors.New("webhook signature or token is missing or wrong")

// Push is a verified webhook.
type Push struct {
	// Ref is the pushed ref (refs/heads/main), empty when the event names none (a ping).
	Ref string
	// Event is the provider's event name (push, ping, Push Hook, ...), when it sends one.
	Event string
}

// Branch is the pushed branch, empty when Ref is not a branch.
func (p Push) Branch() string {
	b, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	if !ok {
		return ""
	}
	return b
}

// Verify reads r's body (at most MaxBody) and checks it against secret for source. It returns an error
// wrapping ErrUnauthorized for a missing or wrong signature or token, and another error for an unknown
// source or an unreadable body; only a nil error comes with a Push.
func Verify(source string, secret []byte, r *http.Request) (Push, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return Push{}, fmt.Errorf("read webhook body: %w", err)
	}
	if len(body) > MaxBody {
		return Push{}, fmt.Errorf("webhook body is larger than %d MiB", MaxBody>>20)
	}
	if len(secret) == 0 {
		return Push{}, fmt.Errorf("%w: no webhook secret is configured (start watch with --webhook-secret-file)", ErrUnauthorized)
	}
	var event string
	switch source {
	case GitHub:
		if !hmacMatches(secret, body, strings.TrimPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")) {
			return Push{}, fmt.Errorf("%w: X-Hub-Signature-256 does not match the body", ErrUnauthorized)
		}
		event = r.Header.Get("X-GitHub-Event")
	case GitLab:
		tok := r.Header.Get("X-Gitlab-Token")
		if tok == "" || subtle.ConstantTimeCompare([]byte(tok), secret) != 1 {
			return Push{}, fmt.Errorf("%w: X-Gitlab-Token is not the webhook secret", ErrUnauthorized)
		}
		event = r.Header.Get("X-Gitlab-Event")
	case Gitea:
		sig := r.Header.Get("X-Gitea-Signature")
		if sig == "" {
			sig = strings.TrimPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
		}
		if !hmacMatches(secret, body, sig) {
			return Push{}, fmt.Errorf("%w: X-Gitea-Signature does not match the body", ErrUnauthorized)
		}
		event = r.Header.Get("X-Gitea-Event")
	default:
		return Push{}, fmt.Errorf("unknown webhook source %q; use /hooks/github, /hooks/gitlab or /hooks/gitea", source)
	}
	var payload struct {
		Ref string `json:"ref"`
	}
	_ = json.Unmarshal(body, &payload) // a verified body that is not a push (a ping) names no ref
	return Push{Ref: payload.Ref, Event: event}, nil
}

// hmacMatches reports whether sigHex is the hex HMAC-SHA256 of body under secret, in constant time.
func hmacMatches(secret, body []byte, sigHex string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(sigHex))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Sign returns the X-Hub-Signature-256 value of body under secret ("sha256=<hex>"), as GitHub sends it.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
