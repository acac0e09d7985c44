// Package terraform holds the terraform provider's benchmarks: a no-op plan of 5 terraform environments
// of 100 apps each (every one a runtime that examples/terraform-local's module started), measured beside
// the same fleet on local environments in the same run, and an apply of one terraform environment from
// nothing.
//
// Like internal/bench/fleet, they drive the real appfleet binary as a user would and time whole
// processes. Everything here runs only with -bench, and only where terraform is on the PATH.
//
// The benchmarks must never leave a runtime behind: every fleet they apply is destroyed at the end, and
// any runtime whose pid a terraform environment's data dir still records is then killed.
package terraform
