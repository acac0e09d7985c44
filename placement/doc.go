// Package placement chooses the environment of every app that declares a placement (a label selector
// and a strategy, spread or binpack) instead of an environment. It runs between observation and the
// planner: given the declared apps and environments and the observed snapshot, it returns the apps with
// their environment fixed and, for each app it placed now, why it went there, for the plan to show.
//
// Placement is stable: an app observed in an environment that still matches its selector stays there;
// only new apps (and apps whose environment stopped matching) are placed. Moving apps to even out
// environments happens only when asked (Options.Rebalance), and the planner then plans those moves.
//
// Place is pure and deterministic like the planner: no I/O, no clock, ties broken by name. It never
// changes the apps it is given, and it never imports providers or apply.
package placement
