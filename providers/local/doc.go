// Package local is the provider that runs an environment's runtime on this machine: it starts
// `appfleet runtime serve` (this same binary) as a detached process in its own session, with its data dir,
// bearer token, log and a small state file under <state-dir>/environments/<name>/.
//
// The state file (runtime.json) is the provider's only memory: it records the pid, the listen address and
// the spec hash the runtime was started with, so that a later process can tell whether the runtime still
// runs, whether its settings changed, and where to reach it. A pid alone is not trusted, because pids are
// reused: a process counts as the runtime only if its command line names the environment's data dir.
//
// local never deletes data: destroy stops the runtime and moves the environment's directory to
// <state-dir>/archive/environments/<name>-<UTC time>/, from where it can be restored by moving it back.
package local
