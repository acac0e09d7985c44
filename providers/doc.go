// Package providers defines the Provider interface that starts, observes and removes runtimes, the
// registry that builds providers by name, and the observation step that turns what providers and runtime
// APIs report into a plan.Snapshot. Implementations live in sub-packages (local, docker, terraform);
// providertest holds the conformance suite every one of them passes.
//
// Providers never decide what to change: they do what apply asks and report what they see.
package providers
