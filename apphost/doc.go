// Package apphost is the runtime behind `appfleet runtime serve`: one process that hosts many isolated
// apps. It keeps the registry, runs each app's lifecycle (pending, starting, running, stopping, stopped,
// migrating, error), serves the management API of DESIGN.md and each app's data API, hibernates idle
// apps and wakes them on their next request, and exposes health and Prometheus metrics. Every change of
// an app is an event on GET /v1/events (events.go), which a control plane follows instead of polling.
//
// One runtime per data dir: New takes an exclusive flock on DATA_DIR/runtime.lock before it touches
// anything else in the data dir and holds it until Close (the kernel drops it if the process dies). The
// holder writes {"pid", "address", "instance", "started"} into that file (address once bound). A second
// runtime on the same dir fails at once with an error naming the holder's pid and address. Other
// processes (the local provider) read it with runtimelock.Read, which imports nothing of apphost; the
// same instance id and the absolute data dir are in GET /v1/runtime.
//
// Isolation rules this package keeps:
//   - No lock shared by apps is held during an app's I/O. The runtime's map lock guards only the map;
//     each app serialises its own lifecycle (opMu) and its own database use (a one-slot semaphore).
//   - A panic in a request is recovered and counted for that app only; limits.maxInFlight turns excess
//     requests away at once with 503.
//   - An idle app costs no goroutine and no open file: its database is opened on the first request
//     and closed again after the idle timeout.
//
// App traffic: an app that declares API keys takes a request only with one of them (Authorization:
// Bearer <key>); an app that declares no keys is open to anyone who can reach the runtime.
//
// apphost imports spec and apphost/api and nothing of the control plane (plan, providers, apply, cli).
// Secrets received in a spec never leave it: reads show a DSN as its salted hash and an API key as its
// fingerprint (an HMAC of its salted hash under a secret that never leaves the data dir), logs never
// show specs.
package apphost
