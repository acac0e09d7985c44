// Package gitops is the daemon behind `appfleet watch`: it keeps a fleet equal to what a git branch
// declares.
//
// One loop does the work, one pass at a time: it fetches the branch (on an interval with jitter, at once
// on a verified webhook; a burst of triggers is one pass), reads the manifests of a new head from that
// commit's tree (gitsync, spec.LoadFS), and applies them through the engine, labelling every app it
// writes with the commit (LabelCommit). A commit that does not validate, or whose plan is blocked or
// loses data, is refused and recorded with its diagnostics; a failed apply is retried with backoff; in
// both cases the last good commit stays applied. The remote failing backs off and is shown in status.
//
// Drift: the daemon follows every runtime's event stream (GET /v1/events), so an app changed out of
// band is seen at once, and re-observes the whole fleet on the interval (at most once a minute) as a
// safety net. A drift check plans the last good commit against what runs; each app's policy (App or
// Fleet spec.drift, else heal with --self-heal, else notify) decides: heal applies it again, notify
// reports it once per commit and address, ignore leaves it. Environments are always brought back (a
// runtime that died is started again, as apply does). A heal that keeps being undone backs off.
//
// It serves webhooks (webhook), /healthz, /readyz, /metrics, /api/status and a server-rendered status
// page, and posts notifications (notify) on transitions only.
//
// gitops never reads a work tree, never writes to the repository, never sends or logs a secret value,
// and never changes the fleet except through the engine.
package gitops
