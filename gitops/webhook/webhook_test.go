package webhook

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerify(t *testing.T) {
	secret := []byte("topsecret")
	body := `{"ref":"refs/heads/main","after":"abc"}`
	good := Sign(secret, []byte(body))
	tests := []struct {
		name, source string
		secret       []byte
		hdr          map[string]string
		body         string
		ok           bool
		unauthorized bool
	}{
		{"github signed", GitHub, secret, map[string]string{"X-Hub-Signature-256": good, "X-GitHub-Event": "push"}, body, true, false},
		{"github wrong secret", GitHub, secret, map[string]string{"X-Hub-Signature-256": Sign([]byte("other"), []byte(body))}, body, false, true},
		{"github body changed", GitHub, secret, map[string]string{"X-Hub-Signature-256": good}, body + " ", false, true},
		{"github no signature", GitHub, secret, nil, body, false, true},
		{"github not hex", GitHub, secret, map[string]string{"X-Hub-Signature-256": "sha256=zz"}, body, false, true},
		{"gitlab token", GitLab, secret, map[string]string{"X-Gitlab-Token": "topsecret"}, body, true, false},
		{"gitlab wrong token", GitLab, secret, map[string]string{"X-Gitlab-Token": "topsecre"}, body, false, true},
		{"gitlab no token", GitLab, secret, nil, body, false, true},
		{"gitea signature", Gitea, secret, map[string]string{"X-Gitea-Signature": strings.TrimPrefix(good, "sha256=")}, body, true, false},
		{"gitea hub signature", Gitea, secret, map[string]string{"X-Hub-Signature-256": good}, body, true, false},
		{"gitea wrong", Gitea, secret, map[string]string{"X-Gitea-Signature": strings.Repeat("0", 64)}, body, false, true},
		{"no secret configured", GitHub, nil, map[string]string{"X-Hub-Signature-256": Sign(nil, []byte(body))}, body, false, true},
		{"unknown source", "bitbucket", secret, nil, body, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/hooks/"+tt.source, strings.NewReader(tt.body))
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			p, err := Verify(tt.source, tt.secret, r)
			if tt.ok {
				require.NoError(t, err)
				assert.Equal(t, "refs/heads/main", p.Ref)
				assert.Equal(t, "main", p.Branch())
				return
			}
			require.Error(t, err)
			assert.Equal(t, Push{}, p, "an error never comes with a push")
			assert.Equal(t, tt.unauthorized, errors.Is(err, ErrUnauthorized), err.Error())
			assert.NotContains(t, err.Error(), "topsecret")
		})
	}
}

func TestVerifyBodyTooLarge(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/hooks/github", strings.NewReader(strings.Repeat("x", MaxBody+1)))
	_, err := Verify(GitHub, []byte("s"), r)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than")
}
