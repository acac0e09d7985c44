// Package watch holds the benchmarks of the GitOps daemon (`appfleet watch`) on a fleet of 1,000 apps in
// one local runtime: how long a one-field commit takes to be applied after a webhook and with
// --interval 1s, how long an app changed through its runtime's API takes to be healed, and what the
// idle daemon costs (CPU and resident memory).
//
// They drive the real binary against a real git repository and a real runtime, as a user would. They
// run only with -bench; every daemon and runtime they start is stopped at the end.
package watch
