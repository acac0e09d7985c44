package plan

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"

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
// written only as references (fromEnv/fromFile) and salted hashes, never as values: apply resolves them
// again from its own environment.
func Save(w io.Writer, p *Plan) error {
	q := *p
	q.Desired = stripSecrets(p.Desired)
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

// StaleResource is one action of a saved plan whose resource changed since the plan observed it.
type StaleResource struct {
	Address Address
	// Planned is the fingerprint the plan recorded, Observed the one seen now.
	Planned, Observed string
}

func (s StaleResource) String() string {
	return fmt.Sprintf("%s changed since the plan was made (planned against %s, now %s)", s.Address, s.Planned, s.Observed)
}

// Stale compares the fingerprint of every action of a saved plan that changes something with what fresh
// observes now, and names each resource that changed. An empty result means the plan may be applied.
// Stale is pure.
func Stale(saved *Plan, fresh Snapshot) []StaleResource {
	var out []StaleResource
	for _, a := range saved.Actions {
		if !a.Kind.Changes() {
			continue
		}
		now := Fingerprint(a, fresh)
		if now != a.Fingerprint {
			out = append(out, StaleResource{Address: a.Address, Planned: a.Fingerprint, Observed: now})
		}
	}
	return out
}

// Fingerprint is what snapshot s shows of the resource action a is about, in the form of
// Action.Fingerprint.
func Fingerprint(a *Action, s Snapshot) string {
	if a.ResourceType == TypeEnvironment {
		st, seen := s.Environments[a.Name]
		return envFingerprint(st, seen)
	}
	st, ok := s.Environments[cmp.Or(a.FromEnvironment, a.Environment)]
	switch {
	case !ok || !st.Exists:
		return FingerprintAbsent
	case !st.Reachable:
		return FingerprintUnknown
	}
	for i := range st.Apps {
		if st.Apps[i].Name == a.Name {
			return "generation:" + strconv.FormatInt(st.Apps[i].Generation, 10)
		}
	}
	return FingerprintAbsent
}

// SecretsChanged compares the secrets a saved plan was made with (as hashes) with those of fresh, the
// same manifests resolved again now, and names each secret whose value changed, was added or was removed
// since, as "app.<name>: apiKeys.<key>" or "app.<name>: database.dsn". The manifests' digest cannot see
// this: a secret's value lives outside them. An empty result means the plan's secrets still hold.
// SecretsChanged is pure and never returns a value.
func SecretsChanged(saved *Plan, fresh Desired) []string {
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
			if (o == nil) != (n == nil) || secretHash(name, o) != secretHash(name, n) {
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
