// Package registry is a runtime's durable list of apps: each app's name, labels, spec, generation and
// where its data lives, in one SQLite file in the data dir. After a restart (also after kill -9) the
// runtime rebuilds every app from it.
//
// The registry keeps API keys only as salted hashes. The one secret it keeps as given is a PostgreSQL
// DSN, which the runtime needs to reconnect; it lives only in the data dir (mode 0700) and is never
// returned. The registry does no lifecycle work and never opens an app's database.
package registry
