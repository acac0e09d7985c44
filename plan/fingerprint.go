package plan

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
)

// Fingerprints of resources that were not seen.
const (
	FingerprintAbsent  = "absent"
	FingerprintUnknown = "unknown"
)

// envFingerprint is what a plan records of an environment: "absent", or its spec hash and whether its
// runtime runs.
func envFingerprint(st EnvironmentState, seen bool) string {
	if !seen || !st.Exists {
		return FingerprintAbsent
	}
	fp := "hash:" + st.SpecHash + ",running:" + strconv.FormatBool(st.Running)
	if n := nestedDigest(st.Changes); n != "" {
		fp += ",nested:" + n
	}
	return fp
}

// nestedDigest stands for what the provider's own planner plans (addresses and actions, drift aside), so
// that a saved plan whose provider now plans otherwise is stale; "" when it plans nothing.
func nestedDigest(cs []NestedChange) string {
	h := sha256.New()
	n := 0
	for _, c := range cs {
		if c.Changes() {
			fmt.Fprintf(h, "%s %s\n", c.Address, c.Action)
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// appFingerprint is what a plan records of an observed app: its generation, its state (running,
// stopped or error) and a digest of its labels and spec. A start or stop, or a label changed out of band
// leaves the generation as it was; the rest of the fingerprint still changes. The digest leaves secrets
// out (it is shown in the JSON plan, and nothing derived from a secret may be): Stale compares the
// secret hashes a saved plan observed on their own.
func appFingerprint(a *api.App) string {
	if a == nil {
		return FingerprintAbsent
	}
	s := withoutSecrets(a.Spec)
	b, _ := json.Marshal(struct {
		Labels map[string]string `json:"labels,omitempty"`
		Spec   spec.AppSpec      `json:"spec"`
	}{a.Labels, s}) // maps marshal with sorted keys: the digest is stable
	sum := sha256.Sum256(b)
	return fmt.Sprintf("generation:%d,state:%s,digest:%s", a.Generation, observedState(a.Status), hex.EncodeToString(sum[:8]))
}

// withoutSecrets is s with every secret reduced to whether it is set.
func withoutSecrets(s spec.AppSpec) spec.AppSpec {
	if s.Database.DSN != nil {
		s.Database.DSN = &spec.SecretRef{}
	}
	if s.APIKeys != nil {
		keys := make([]spec.APIKey, len(s.APIKeys))
		for i, k := range s.APIKeys {
			keys[i] = spec.APIKey{Name: k.Name}
		}
		s.APIKeys = keys
	}
	return s
}

// secretsChanged reports whether the secret hashes of an app a saved plan observed (before, redacted)
// differ from those observed now.
func secretsChanged(name string, before spec.AppSpec, now spec.AppSpec) bool {
	hashes := func(s spec.AppSpec) []string {
		out := []string{"dsn=" + secretHash(name, s.Database.DSN)}
		for _, k := range s.APIKeys {
			out = append(out, k.Name+"="+secretHash(name, &k.Value))
		}
		slices.Sort(out)
		return out
	}
	return !slices.Equal(hashes(before), hashes(now))
}

// StaleResource is one action of a saved plan whose resource changed since the plan observed it.
type StaleResource struct {
	Address Address
	// Planned is the fingerprint the plan recorded, Observed the one seen now.
	Planned, Observed string
	// Changed names, when they can be told, what changed: "state running -> stopped", "labels",
	// "spec.settings", "spec.apiKeys", ...; never a secret's value or hash.
	Changed []string
}

func (s StaleResource) String() string {
	if len(s.Changed) > 0 {
		return fmt.Sprintf("%s changed since the plan was made: %s", s.Address, strings.Join(s.Changed, ", "))
	}
	return fmt.Sprintf("%s changed since the plan was made (planned against %s, now %s)", s.Address, s.Planned, s.Observed)
}

// Stale compares the fingerprint of every action of a saved plan with what fresh observes now, and
// names each resource that changed: the plan was made, shown and approved against what it observed,
// so any change to that (a generation, a start or stop, labels, settings, keys, a runtime that went
// down) makes it stale, whether or not its action changes something. Apps the plan could not observe
// (Unknown) are not compared: the plan does nothing for them. An empty result means the plan may be
// applied. Stale is pure.
func Stale(saved *Plan, fresh Snapshot) []StaleResource {
	var out []StaleResource
	for _, a := range saved.Actions {
		if a.Kind == Unknown {
			continue
		}
		now := Fingerprint(a, fresh)
		if now != a.Fingerprint || appSecretsChanged(a, fresh) {
			out = append(out, StaleResource{Address: a.Address, Planned: a.Fingerprint, Observed: now,
				Changed: staleDetail(a, fresh)})
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
	return appFingerprint(findApp(st.Apps, a.Name))
}

func findApp(apps []api.App, name string) *api.App {
	for i := range apps {
		if apps[i].Name == name {
			return &apps[i]
		}
	}
	return nil
}

// appSecretsChanged reports whether the secrets of the app of action a, as its runtime reports them
// (hashes), changed since the plan observed them: a key rotated out of band.
func appSecretsChanged(a *Action, fresh Snapshot) bool {
	if a.ResourceType != TypeApp || a.Before == nil || a.Before.App == nil {
		return false
	}
	now := findApp(fresh.Environments[cmp.Or(a.FromEnvironment, a.Environment)].Apps, a.Name)
	return now != nil && secretsChanged(a.Name, *a.Before.App, now.Spec)
}

// staleDetail says what changed of an app a saved plan observed (a.Before) and fresh shows now; nil when
// either side is missing (then the fingerprints say it: absent, unknown).
func staleDetail(a *Action, fresh Snapshot) []string {
	if a.ResourceType == TypeEnvironment {
		st, seen := fresh.Environments[a.Name]
		if a.Before == nil || !seen || !st.Exists {
			return nil
		}
		var out []string
		if wasRunning := a.Before.Status != "stopped"; wasRunning != st.Running {
			out = append(out, fmt.Sprintf("runtime %s -> %s", runningWord(wasRunning), runningWord(st.Running)))
		}
		if st.SpecHash != a.Before.SpecHash {
			out = append(out, "runtime settings")
		}
		return out
	}
	st := fresh.Environments[cmp.Or(a.FromEnvironment, a.Environment)]
	now := findApp(st.Apps, a.Name)
	if a.Before == nil || a.Before.App == nil || now == nil || !st.Reachable {
		return nil
	}
	var out []string
	if now.Generation != a.Before.Generation {
		out = append(out, fmt.Sprintf("generation %d -> %d", a.Before.Generation, now.Generation))
	}
	if was, is := observedState(a.Before.Status), observedState(now.Status); was != is {
		out = append(out, fmt.Sprintf("state %s -> %s", was, is))
	}
	if !maps.Equal(a.Before.Labels, now.Labels) {
		out = append(out, "labels")
	}
	was, is := toMap(*a.Before.App), toMap(now.Spec.Redacted(a.Name))
	for _, k := range slices.Sorted(maps.Keys(mergeKeys(was, is))) {
		if k == "state" {
			continue // said above, from the status
		}
		x, _ := json.Marshal(was[k])
		y, _ := json.Marshal(is[k])
		if string(x) != string(y) {
			out = append(out, "spec."+k)
		}
	}
	return out
}

func mergeKeys(a, b map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func runningWord(running bool) string {
	if running {
		return "running"
	}
	return "stopped"
}
