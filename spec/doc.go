// Package spec holds appfleet's manifest kinds (Fleet, Environment, App), loads them from YAML with a
// file:line:column for every node, applies defaults in one place, validates them (collecting every problem
// in one run), and resolves secret references.
//
// spec does no network I/O and knows nothing of providers, plans or runtimes. A secret's value never
// appears in anything this package prints or returns as an error.
package spec
