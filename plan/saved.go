package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/appfleet/appfleet/spec"
)

// SavedFormatVersion is the version of the saved-plan file this release writes and reads.
const SavedFormatVersion = 1

// savedKind marks a file as an appfleet saved plan.
const savedKind = "appfleet-plan"

type savedFile struct {
	Kind          string `json:"kind"`
	FormatVersion int    `json:"formatVersion"`
	*Plan
}

// ErrNotAPlan is what Load returns (wrapped) when the input is not an appfleet saved plan.
var ErrNotAPlan = errors.New("not an appfleet saved plan")

// Save writes the plan as a saved-plan file: JSON with a format version, the manifests' digest, the
// options, every action with the fingerprint of what it observed, and the declared specs. Secrets are
// written only as references (fromEnv/fromFile), API keys also as their runtime's fingerprints and the
// DSN as its salted hash, never as values: apply resolves them again from its own environment.
func Save(w io.Writer, p *Plan) error {
	q := *p
	q.Desired = stripSecrets(p.Desired, Snapshot{})
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(savedFile{Kind: savedKind, FormatVersion: SavedFormatVersion, Plan: &q})
}

// Load reads a saved-plan file that Save wrote. It refuses other files and other format versions, and
// checks the plan's invariants (unique addresses, dependencies within the plan).
func Load(r io.Reader) (*Plan, error) {
	var f savedFile
	f.Plan = &Plan{}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotAPlan, err)
	}
	if f.Kind != savedKind {
		return nil, fmt.Errorf("%w: kind is %q", ErrNotAPlan, f.Kind)
	}
	if f.FormatVersion != SavedFormatVersion {
		return nil, fmt.Errorf("saved plan format version %d is not supported (this release reads %d); plan again", f.FormatVersion, SavedFormatVersion)
	}
	seen := map[Address]bool{}
	for _, a := range f.Actions {
		if a == nil {
			return nil, fmt.Errorf("%w: an action is null", ErrNotAPlan)
		}
		if seen[a.Address] {
			return nil, fmt.Errorf("%w: address %s appears twice", ErrNotAPlan, a.Address)
		}
		seen[a.Address] = true
	}
	for _, a := range f.Actions {
		for _, d := range a.DependsOn {
			if !seen[d] {
				return nil, fmt.Errorf("%w: %s depends on %s, which is not in the plan", ErrNotAPlan, a.Address, d)
			}
		}
	}
	if f.Actions == nil {
		f.Actions = []*Action{}
	}
	return f.Plan, nil
}

// SecretsChanged compares the secrets a saved plan was made with (as hashes and fingerprints) with those
// of fresh, the same manifests resolved again now, whose keys are fingerprinted by the runtimes snap
// observed, and names each secret whose value changed, was added or was removed since, as
// "app.<name>: apiKeys.<key>" or "app.<name>: database.dsn". The manifests' digest cannot see this: a
// secret's value lives outside them. A key whose runtime gave no fingerprint then or now (its environment
// did not exist) is compared only by presence. An empty result means the plan's secrets still hold.
// SecretsChanged is pure and never returns a value.
func SecretsChanged(saved *Plan, fresh Desired, snap Snapshot) []string {
	fresh = stripSecrets(fresh, snap)
	was := map[string]spec.AppSpec{}
	for _, a := range saved.Desired.Apps {
		was[a.Metadata.Name] = a.Spec
	}
	var out []string
	for _, a := range fresh.Apps {
		name := a.Metadata.Name
		old, ok := was[name]
		if !ok {
			continue // not in the saved plan: the digest check covers a changed set of apps
		}
		changed := func(path string, o, n *spec.SecretRef) {
			unknown := o != nil && n != nil && (o.SHA256 == "" || n.SHA256 == "")
			if (o == nil) != (n == nil) || (!unknown && secretHash(name, o) != secretHash(name, n)) {
				out = append(out, fmt.Sprintf("%s: %s", AppAddress(name), path))
			}
		}
		changed("database.dsn", old.Database.DSN, a.Spec.Database.DSN)
		keys := map[string]*spec.SecretRef{}
		for _, k := range old.APIKeys {
			keys[k.Name] = &k.Value
		}
		for _, k := range a.Spec.APIKeys {
			changed("apiKeys."+k.Name, keys[k.Name], &k.Value)
			delete(keys, k.Name)
		}
		for _, n := range slices.Sorted(maps.Keys(keys)) {
			changed("apiKeys."+n, keys[n], nil)
		}
	}
	slices.Sort(out)
	return out
}
