// Package store is one app's database: a connection to its SQLite file or PostgreSQL database/schema,
// the tables its collections become, the migrations between two versions of its data model, and the
// record operations of the data API.
//
// Every app gets exactly one connection, used by one goroutine at a time (the caller serialises), so
// an idle app costs no goroutine and as little memory as SQLite allows. SQLite is reached through its
// C API (modernc.org/sqlite/lib, SQLite compiled to Go), on connections without SQLite's own mutex
// (capiConn); PostgreSQL through pgx. Both share one SQL builder; where they differ a Dialect says
// how.
//
// store never sees HTTP, never logs, and knows nothing of the registry or of other apps. It must never
// return or format a DSN or any other secret in an error.
package store
