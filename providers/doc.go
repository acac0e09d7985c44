// Package providers defines the Provider interface that starts, observes and removes runtimes, and the
// registry that builds providers by name. Implementations live in sub-packages (local, docker,
// terraform); providertest holds the conformance suite every one of them passes.
//
// Providers never decide what to change: they do what the executor asks and report what they see. This
// package imports only spec and the runtime's API client, never the planner: what providers observe is
// turned into the planner's snapshot by the engine.
package providers
