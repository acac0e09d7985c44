// Package fleet holds the plan and apply benchmarks of the control plane: a no-op plan of a large fleet
// of local environments, an apply of that fleet from nothing, and how plan time grows with the number
// of apps, each measured beside Terraform doing the equivalent work with terraform_data resources.
//
// The benchmarks drive the real appfleet binary as a user would (built once per run from this module)
// and time whole processes, because what a user waits for includes start-up, loading the manifests and
// asking every runtime for its apps. One benchmark also calls spec, providers and plan in-process to
// split a plan into its phases and to profile them.
//
// Everything here runs only with -bench: the package has no tests, and fixtures are built lazily by the
// benchmarks that need them, so that a plain `go test ./...` pays nothing. See docs/benchmarks.md for the
// commands and the figures.
//
// The benchmarks must never leave a runtime behind: every fleet they apply is destroyed at the end of
// the run, and any runtime process still recorded in a state dir is then killed.
package fleet
