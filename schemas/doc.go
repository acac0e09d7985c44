// Package schemas holds the JSON Schemas (draft 2020-12) of appfleet's manifest kinds, one file per kind
// plus manifest.schema.json, which picks the kind's schema by the document's kind. Editors use them
// through a "# yaml-language-server: $schema=" first line; the tests keep them in step with the Go types
// in package spec and validate every example against them.
//
// The schemas describe shape only; package spec's validation stays the authority on what is valid.
package schemas

import "embed"

// FS holds every *.schema.json file of this directory.
//
//go:embed *.schema.json
var FS embed.FS
