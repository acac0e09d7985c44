// Package all assembles the registry of every provider compiled into this build. It exists apart from
// package providers because the implementations import providers; the CLI and the watch daemon take
// their registry from here, tests build their own.
package all
