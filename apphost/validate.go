package apphost

import (
	"fmt"
	"regexp"

	"github.com/appfleet/appfleet/apphost/store"
	"github.com/appfleet/appfleet/spec"
)

var (
	nameRE     = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	hostnameRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	hashRE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func driverOf(s spec.AppSpec) string {
	if s.Database.Driver == "" {
		return spec.DriverSQLite
	}
	return s.Database.Driver
}

func isolationOf(s spec.AppSpec) string {
	if s.Database.Isolation == "" {
		return spec.IsolationDatabase
	}
	return s.Database.Isolation
}

func wantsRunning(s spec.AppSpec) bool { return s.State != spec.StateStopped }

// validateSpec checks what the runtime needs of a spec and returns one line per problem. It does not
// repeat the manifest loader's checks that do not matter to a runtime (environment, protect).
func validateSpec(name string, s spec.AppSpec) []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if !nameRE.MatchString(name) {
		add("name: %q must be a DNS label: lowercase letters, digits and '-', starting with a letter, at most 63 characters", name)
	}
	switch s.State {
	case "", spec.StateRunning, spec.StateStopped:
	default:
		add("state: %q must be running or stopped", s.State)
	}
	switch s.Database.Driver {
	case "", spec.DriverSQLite:
		if s.Database.DSN != nil {
			add("database.dsn: only the postgres driver takes a DSN")
		}
		if s.Database.Isolation != "" {
			add("database.isolation: only the postgres driver takes an isolation mode")
		}
	case spec.DriverPostgres:
		if s.Database.DSN == nil || (s.Database.DSN.Value == "" && s.Database.DSN.SHA256 == "") {
			add("database.dsn: the postgres driver needs a DSN; send its resolved value")
		}
		switch s.Database.Isolation {
		case "", spec.IsolationDatabase, spec.IsolationSchema:
		default:
			add("database.isolation: %q must be database or schema", s.Database.Isolation)
		}
	default:
		add("database.driver: %q must be sqlite or postgres", s.Database.Driver)
	}
	seenHost := map[string]bool{}
	for i, h := range s.Hostnames {
		if !hostnameRE.MatchString(h) || len(h) > 253 {
			add("hostnames[%d]: %q is not a lowercase DNS name", i, h)
		}
		if seenHost[h] {
			add("hostnames[%d]: %q is listed twice", i, h)
		}
		seenHost[h] = true
	}
	seenKey := map[string]bool{}
	for i, k := range s.APIKeys {
		if k.Name == "" {
			add("apiKeys[%d].name: a key needs a name", i)
		} else if seenKey[k.Name] {
			add("apiKeys[%d].name: %q is listed twice", i, k.Name)
		}
		seenKey[k.Name] = true
		switch {
		case k.Value.Value != "":
		case k.Value.SHA256 != "" && hashRE.MatchString(k.Value.SHA256):
		default:
			add("apiKeys[%d].value: send the key's resolved value (references such as fromEnv are resolved by the control plane)", i)
		}
	}
	if s.Limits.MaxInFlight < 0 {
		add("limits.maxInFlight: %d must not be negative", s.Limits.MaxInFlight)
	}
	if s.Limits.RequestsPerSecond < 0 {
		add("limits.requestsPerSecond: %d must not be negative", s.Limits.RequestsPerSecond)
	}
	if s.Limits.Burst < 0 {
		add("limits.burst: %d must not be negative", s.Limits.Burst)
	} else if s.Limits.Burst > 0 && s.Limits.RequestsPerSecond == 0 {
		add("limits.burst: %d needs limits.requestsPerSecond", s.Limits.Burst)
	}
	probs = append(probs, store.ValidateCollections(s.Collections)...)
	return probs
}
