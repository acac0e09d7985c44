// Package lock makes sure that only one apply or destroy works on a state dir at a time.
//
// The lock is an flock(2) on <state-dir>/lock (LockFileEx on Windows), so the kernel drops it when its
// holder dies, however it dies: a crashed or killed apply is never in the way of the next one. The holder writes who it is into
// the same file so that the error a second caller gets names the process to wait for.
//
// lock never waits long: a caller that cannot take the lock within about a second gets an error at once
// rather than queueing behind an apply that may run for minutes.
package lock
