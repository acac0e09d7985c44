package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one runtime's management API.
type Client struct {
	endpoint string // base URL, e.g. http://127.0.0.1:7410
	token    string
	http     *http.Client
}

// NewClient returns a client for the runtime at endpoint ("host:port" or a URL) with the bearer token.
func NewClient(endpoint, token string) *Client {
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	return &Client{
		endpoint: strings.TrimRight(endpoint, "/"),
		token:    token,
		http:     &http.Client{Timeout: 60 * time.Second},
	}
}

// Endpoint is the base URL the client talks to.
func (c *Client) Endpoint() string { return c.endpoint }

// Error is a non-2xx answer from a runtime.
type Error struct {
	Status int
	ErrorDetail
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("runtime answered %d %s: %s", e.Status, e.Code, e.Message)
	if len(e.Details) > 0 {
		msg += " (" + strings.Join(e.Details, "; ") + ")"
	}
	return msg
}

// StatusOf returns the HTTP status of a runtime error, or 0 when err is not one.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound reports whether the runtime answered 404.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsConflict reports whether the runtime refused the write with 409 (If-Match mismatch or data loss).
func IsConflict(err error) bool { return StatusOf(err) == http.StatusConflict }

// PutOptions qualify PUT /v1/apps/{name}.
type PutOptions struct {
	// IfMatch, when non-zero, makes the write fail with 409 unless the app is at that generation.
	IfMatch       int64
	AllowDataLoss bool
	// IfAbsent makes the write create the app only: it fails with 409 when the app exists (it is sent as
	// If-Match: 0, the generation of an app that does not exist). IfMatch is ignored with it.
	IfAbsent bool
}

// RestoreOptions qualify PUT /v1/apps/{name}/restore.
type RestoreOptions struct {
	// AllowDataLoss lets the restore drop what the snapshot holds but the app's collections cannot keep
	// (a removed collection or field, a changed type); without it the runtime refuses with 409.
	AllowDataLoss bool
}

// Runtime returns the runtime's identity and counters.
func (c *Client) Runtime(ctx context.Context) (Runtime, error) {
	var out Runtime
	err := c.do(ctx, http.MethodGet, "/v1/runtime", nil, nil, &out)
	return out, err
}

// Ready returns nil when /readyz answers 200.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

// ListApps returns every app in the runtime.
func (c *Client) ListApps(ctx context.Context) ([]App, error) {
	var out AppList
	err := c.do(ctx, http.MethodGet, "/v1/apps", nil, nil, &out)
	return out.Apps, err
}

// GetApp returns one app.
func (c *Client) GetApp(ctx context.Context, name string) (App, error) {
	var out App
	err := c.do(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(name), nil, nil, &out)
	return out, err
}

// PutApp creates or updates an app.
func (c *Client) PutApp(ctx context.Context, name string, req PutAppRequest, opts PutOptions) (App, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return App{}, err
	}
	path := "/v1/apps/" + url.PathEscape(name)
	if opts.AllowDataLoss {
		path += "?" + QueryAllowDataLoss + "=true"
	}
	hdr := http.Header{}
	switch {
	case opts.IfAbsent:
		hdr.Set(HeaderIfMatch, "0")
	case opts.IfMatch != 0:
		hdr.Set(HeaderIfMatch, strconv.FormatInt(opts.IfMatch, 10))
	}
	var out App
	err = c.do(ctx, http.MethodPut, path, hdr, bytes.NewReader(body), &out)
	return out, err
}

// StartApp asks the runtime to start an app.
func (c *Client) StartApp(ctx context.Context, name string) (App, error) {
	var out App
	err := c.do(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(name)+"/start", nil, nil, &out)
	return out, err
}

// Fingerprints returns the runtime's fingerprints of hashes (spec.SecretHash of key values of app name),
// in order: what GetApp reports for keys of those values.
func (c *Client) Fingerprints(ctx context.Context, name string, hashes []string) ([]string, error) {
	body, err := json.Marshal(FingerprintsRequest{Hashes: hashes})
	if err != nil {
		return nil, err
	}
	var out Fingerprints
	if err := c.do(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(name)+"/fingerprints", nil, bytes.NewReader(body), &out); err != nil {
		return nil, err
	}
	if len(out.Fingerprints) != len(hashes) {
		return nil, fmt.Errorf("fingerprints of app %q: asked for %d, got %d", name, len(hashes), len(out.Fingerprints))
	}
	return out.Fingerprints, nil
}

// StopApp asks the runtime to stop an app.
func (c *Client) StopApp(ctx context.Context, name string) (App, error) {
	var out App
	err := c.do(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(name)+"/stop", nil, nil, &out)
	return out, err
}

// DeleteApp removes an app, archiving its data unless purge is set.
func (c *Client) DeleteApp(ctx context.Context, name string, purge bool) error {
	path := "/v1/apps/" + url.PathEscape(name)
	if purge {
		path += "?purge=true"
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil, nil)
}

// Backup streams a consistent snapshot of the app's database to w.
func (c *Client) Backup(ctx context.Context, name string, w io.Writer) error {
	return c.do(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(name)+"/backup", nil, nil, w)
}

// Restore replaces the app's data with the snapshot read from r.
func (c *Client) Restore(ctx context.Context, name string, r io.Reader) error {
	return c.RestoreWith(ctx, name, r, RestoreOptions{})
}

// RestoreWith replaces the app's data with the snapshot read from r, as opts allow.
func (c *Client) RestoreWith(ctx context.Context, name string, r io.Reader, opts RestoreOptions) error {
	path := "/v1/apps/" + url.PathEscape(name) + "/restore"
	if opts.AllowDataLoss {
		path += "?" + QueryAllowDataLoss + "=true"
	}
	return c.do(ctx, http.MethodPut, path, nil, r, nil)
}

// do sends one request. out may be nil, an io.Writer (the body is copied) or a value to decode JSON into.
func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, body)
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return responseError(resp)
	}
	switch o := out.(type) {
	case nil:
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	case io.Writer:
		_, err = io.Copy(o, resp.Body)
		return err
	default:
		if err := json.NewDecoder(resp.Body).Decode(o); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
		return nil
	}
}

// responseError reads a non-2xx answer into an *Error.
func responseError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb ErrorBody
	if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
		eb.Error = ErrorDetail{Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(raw))}
	}
	return &Error{Status: resp.StatusCode, ErrorDetail: eb.Error}
}
