// Package testbin builds the appfleet binary for tests that run it as a real process: the runtime's
// process tests, the providers' conformance suite, the end-to-end scripts and the benchmarks.
// It is imported only from tests.
package testbin
