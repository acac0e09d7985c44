// Package spec holds appfleet's manifest kinds (Fleet, Environment, App, AppSet), loads them from YAML
// with a file:line:column for every node, expands each AppSet into the ordinary apps it generates (each
// one validated like a written app, its problems naming the AppSet's file:line:column and the element
// that made it), applies defaults in one place, validates them (collecting every problem in one run),
// and resolves secret references.
//
// spec does no network I/O and knows nothing of providers, plans or runtimes. A secret's value never
// appears in anything this package prints or returns as an error.
package spec
