package api

import (
	"time"

	"github.com/appfleet/appfleet/spec"
)

// App statuses, as DESIGN.md gives the lifecycle.
const (
	StatusPending   = "pending"
	StatusStarting  = "starting"
	StatusRunning   = "running"
	StatusStopping  = "stopping"
	StatusStopped   = "stopped"
	StatusMigrating = "migrating"
	StatusError     = "error"
)

// Error codes carried in ErrorBody.Code, with the HTTP statuses they come with (the runtime maps its
// operations' failures to them in one table, apphost's errKinds).
const (
	CodeInvalid       = "invalid"        // 400 (413 for a body over its bound): the request, spec or snapshot is not valid
	CodeUnauthorized  = "unauthorized"   // 401
	CodeForbidden     = "forbidden"      // 403
	CodeNotFound      = "not_found"      // 404
	CodeDataLoss      = "data_loss"      // 409: the change loses data and the request did not allow it
	CodeConflict      = "conflict"       // 409: If-Match does not match the current generation, or a hostname is another app's
	CodeUnavailable   = "unavailable"    // 503: the app is stopped or changing, or its lifecycle could not take its database in time
	CodeInternal      = "internal"       // 500: a failure inside the runtime; the message names a request id (X-Request-Id) and the log has the cause
	CodeLimitExceeded = "limit_exceeded" // 503 with Retry-After: an app's limits (maxInFlight, queue, rate); 409: the runtime holds --max-apps apps

	CodeMigrationFailed = "migration_failed"   // 422: the schema change could not run; the app keeps serving its old spec, schema and data, and shows the error
	CodeDiskFull        = "disk_full"          // 507: the runtime's disk is full; nothing was written, reads keep working
	CodeDuplicate       = "duplicate"          // 409 from the data API: a unique field's value already exists
	CodeMethod          = "method_not_allowed" // 405
)

// HeaderApp routes app traffic to an app by name, as an alternative to the /apps/{app} prefix.
const HeaderApp = "X-App"

// QueryPurge is the query parameter of DELETE /v1/apps/{name} that removes the data instead of archiving it.
const QueryPurge = "purge"

// HeaderIfMatch carries the generation a write expects to replace; HeaderGeneration answers it.
const (
	HeaderIfMatch    = "If-Match"
	HeaderGeneration = "ETag"
)

// QueryAllowDataLoss is the query parameter of PUT /v1/apps/{name} that lets a migration drop data.
const QueryAllowDataLoss = "allowDataLoss"

// PutAppRequest is the body of PUT /v1/apps/{name}. Spec's secrets carry resolved values.
type PutAppRequest struct {
	Spec spec.AppSpec `json:"spec"`
	// Labels are the app's metadata labels; the control plane keeps its fleet ownership there.
	Labels map[string]string `json:"labels,omitempty"`
}

// App is what every read of an app returns. Spec's secrets are never values: the DSN is its SHA256 hash
// (spec.SecretHash with the app's name as salt), each API key its fingerprint, HMAC-SHA256 of that hash
// under a secret only the runtime holds (see Fingerprints), which cannot be checked against a guessed key.
type App struct {
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels,omitempty"`
	Spec       spec.AppSpec      `json:"spec"`
	Generation int64             `json:"generation"`
	Status     string            `json:"status"`
	Error      string            `json:"error,omitempty"`
	Stats      AppStats          `json:"stats"`
}

// FingerprintsRequest is the body of POST /v1/apps/{name}/fingerprints: salted hashes (spec.SecretHash
// with the app's name as salt) of key values the caller holds.
type FingerprintsRequest struct {
	Hashes []string `json:"hashes"`
}

// Fingerprints answers a FingerprintsRequest: the runtime's fingerprint of each hash, in order, the form
// in which App reports API keys. A declared key matches an app's key when their fingerprints are equal.
type Fingerprints struct {
	Fingerprints []string `json:"fingerprints"`
}

// AppStats are counters of one app since the runtime started.
type AppStats struct {
	Requests    int64      `json:"requests"`
	Errors      int64      `json:"errors"`
	Panics      int64      `json:"panics"`
	Rejected    int64      `json:"rejected"` // answered 503 by the bulkhead
	InFlight    int64      `json:"inFlight"`
	Hibernating bool       `json:"hibernating"`
	LastRequest *time.Time `json:"lastRequest,omitempty"`
}

// AppList is the body of GET /v1/apps.
type AppList struct {
	Apps []App `json:"apps"`
}

// Runtime is the body of GET /v1/runtime.
//
// Instance and DataDir identify the process: Instance is a random id the runtime makes each time it
// starts and also records in DATA_DIR/runtime.lock (package apphost/runtimelock), and DataDir is its
// data dir as an absolute path. A control plane that started a runtime checks both before it trusts
// that what answers on an address is that runtime: another program, or another runtime that took the
// port, answers with something else.
type Runtime struct {
	Name          string         `json:"name"`
	Version       string         `json:"version"`
	Instance      string         `json:"instance"`
	DataDir       string         `json:"dataDir"`
	StartedAt     time.Time      `json:"startedAt"`
	UptimeSeconds float64        `json:"uptimeSeconds"`
	Apps          map[string]int `json:"apps"` // count by status, plus "total"
	MemoryBytes   uint64         `json:"memoryBytes"`
}

// ErrorBody is the body of every error answer: {"error": {...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong; Details lists one line per problem (for example each data-losing change).
type ErrorDetail struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
}
