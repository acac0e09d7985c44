// Package engine runs appfleet's pipeline for every caller (the CLI, CI, the watch daemon, tests):
// load the manifests → lock the state dir → observe (providers, then each runtime's API, in parallel) →
// plan (pure, plan.Build) → apply (the executor, apply.Run) → converge (a second pass for apps whose
// runtime did not answer before the first).
//
// An Engine is built once from a Config: the provider registry (every provider of the build for the
// command, a fake one in tests), the state dir, and the runtime binary. It keeps nothing between calls,
// so a long-running daemon calls it again and again:
//
//	e := engine.New(engine.Config{Registry: all.Registry(), StateDir: dir})
//	res, err := e.Plan(ctx, engine.Request{Manifests: m}, sink)        // observe and plan; changes nothing
//	res, err = e.Apply(ctx, engine.Request{Manifests: m, Prune: true}, sink)
//
// A Request names the manifests as Paths (files, directories, "-" for Stdin), as Paths inside an FS (a
// git commit's tree, read by spec.LoadFS), or as Manifests already loaded and validated elsewhere. Load
// reads and validates them on its own, for callers that check something before going on (the CLI asks
// whether it may prompt). Observe is the read-only step behind status.
//
// Apply takes the state dir's lock for its whole run, so one change of a fleet runs at a time, whichever
// process asks. It reports each plan to the Sink before carrying it out, asks Request.Approve (the CLI's
// confirmation prompt; nil approves), and refuses with a typed error what must not run: a blocked plan
// (plan.ErrBlocked), data loss not allowed (*DataLossError), a saved plan that no longer holds
// (*StaleError). Its outcome is an error matching ErrInterrupted or ErrPartial (*FailedError,
// *UnconvergedError) when the fleet does not match the manifests, else nil.
//
// Progress goes to a Sink: loading diagnostics, observation warnings, each plan, and the executor's
// events (apply.Event). The engine never writes to a terminal, never prompts, never renders a plan and
// never decides an exit code: that is the caller's. It never changes anything in Plan or Observe.
package engine
