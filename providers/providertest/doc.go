// Package providertest is the conformance suite every provider passes: the lifecycle absent → apply →
// present → apply again changes nothing → settings change converges with data kept → destroy → absent,
// a runtime that crashed and is brought back with its data, and a refused apply that names its cause.
//
// The suite drives real runtimes through the provider and checks them through the runtime's management
// API, so a provider's tests must give it a real appfleet binary (BuildAppfleet) and a real place to run.
// It never fakes a runtime.
package providertest
