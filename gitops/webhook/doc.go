// Package webhook checks push webhooks from GitHub (X-Hub-Signature-256: an HMAC-SHA256 of the body),
// GitLab (X-Gitlab-Token: the shared secret) and Gitea (X-Gitea-Signature or X-Hub-Signature-256) and
// reads which branch a push is for.
//
// Every comparison is constant-time. A request that is not verified must trigger nothing: Verify is the
// only way to a Push, and it never returns one with an error. The package never logs a secret or a
// signature.
package webhook
