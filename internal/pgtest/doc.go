// Package pgtest starts a throwaway PostgreSQL server for tests: initdb and pg_ctl in a temporary
// directory, on a free loopback port, with its socket in that directory, stopped and removed when the
// test ends. Run as root, it runs the server as the postgres user (initdb refuses root).
//
// It skips the test only when the PostgreSQL server binaries are absent; every other problem fails
// the test, so a broken setup is never mistaken for a pass. It is for tests only.
package pgtest
