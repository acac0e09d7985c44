// Package runtimelock is the one-runtime-per-data-dir lock of `appfleet runtime serve` and the way
// other processes find out who holds it.
//
// The lock is an exclusive flock(2) on DATA_DIR/runtime.lock, taken by the runtime before it touches
// anything in the data dir and held for its whole life, so the kernel drops it when the runtime dies,
// however it dies. The holder writes who it is into the same file as one JSON object:
//
//	{"pid": 4242, "address": "127.0.0.1:7410", "instance": "9f1c2e7a5b3d4c6e", "started": "2026-11-30T16:00:00Z"}
//
// address is empty until the runtime has bound its listener; instance is a random id made at start,
// the same one GET /v1/runtime reports, so a caller can tell that what answers on address is the
// runtime holding this lock and not a later one or another program.
//
// It is a package of its own so that both the runtime (apphost) and the control plane's local provider
// can use it: it imports nothing of either. It must never remove the lock file (a removed file lets a
// second runtime lock a new inode while the first still runs) and never wait for a lock.
package runtimelock
