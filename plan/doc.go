// Package plan turns what the manifests declare (Desired) and what was observed (Snapshot) into a Plan:
// an ordered graph of typed actions with reasons and field-level diffs, and renders it as text, markdown
// or Terraform's machine-readable JSON plan format. It also saves and loads plans and tells which actions
// of a saved plan went stale.
//
// Build is a pure function: it performs no I/O, reads no clock and no environment, and gives the same
// plan for the same inputs. A plan never holds a secret's value: secrets are kept as references
// (fromEnv/fromFile) and salted hashes, and every renderer shows them as "(sensitive)". Reasons are for
// display only; nothing decides anything from them. plan never imports providers or apply.
package plan
