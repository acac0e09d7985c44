// Package apply executes a plan: it walks the plan's dependency graph with bounded parallelism, performs
// each action through a Performer, retries transient errors with backoff, skips the dependents of a failed
// action while independent branches carry on, and reports every step as an Event to a Sink.
//
// apply makes no decisions: what to do is the plan's, how to do one action is the Performer's. It never
// starts an action after its context is cancelled, and it lets actions already in flight finish.
// FleetPerformer is the Performer that acts on real providers and runtimes; every action it performs is
// idempotent, so running apply again after a failure or an interruption converges.
package apply
