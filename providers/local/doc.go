// Package local is the provider that runs an environment's runtime on this machine: it starts
// `appfleet runtime serve` (this same binary) as a detached process in its own session, with its data dir,
// bearer token, log and a small state file under <state-dir>/environments/<name>/.
//
// The state file (runtime.json) records the pid, the listen address, the instance id and the spec hash
// the runtime was started with, so that a later process can tell whether its settings changed and where
// to reach it. What runs is known from the data dir's lock (apphost/runtimelock), which the kernel keeps
// exactly as long as a runtime runs on that dir and which names its pid and address: a runtime.json that
// is lost, damaged or stale never hides a running runtime, and destroy never archives the data dir of
// one. A pid alone is not trusted, because pids are reused; nor is an address that answers /readyz:
// the runtime must report the environment's data dir and the instance id its lock records.
//
// It runs on Unix systems only (Linux, macOS): on others New says that it is not supported there.
//
// local never deletes data: destroy stops the runtime and moves the environment's directory to
// <state-dir>/archive/environments/<name>-<UTC time>/, from where it can be restored by moving it back.
package local
