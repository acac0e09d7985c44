// Package dockertest gives tests and benchmarks that run real containers what they share: a client of the
// local engine (or a skip that says none answers), and the removal of everything labelled with a fleet
// the caller created. It is imported only from tests, and never removes what its caller did not name.
package dockertest
