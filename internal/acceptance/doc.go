// Package acceptance runs appfleet end to end: testscript files under testdata/script drive the real
// binary (built once per test run) against real local runtimes, real SQLite and real processes, the way a
// person or a CI pipeline would. It holds only tests.
package acceptance
