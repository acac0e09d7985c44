package spec

import "time"

// Defaults of fields a manifest may leave out.
const (
	DefaultParallelism = 10
	DefaultMaxApps     = 1000
	DefaultIdleTimeout = 10 * time.Minute
	DefaultState       = StateRunning
	DefaultDriver      = DriverSQLite
	DefaultIsolation   = IsolationDatabase // for postgres
	DefaultStrategy    = StrategySpread
)

// applyDefaults is the one place defaults are set. It runs after decoding and before validation, so
// validation sees what will be applied. It only fills zero values, so running it twice changes nothing.
func applyDefaults(m *Manifests) {
	if m.Fleet != nil && m.Fleet.Spec.Parallelism == 0 {
		m.Fleet.Spec.Parallelism = DefaultParallelism
	}
	for i := range m.Environments {
		rt := &m.Environments[i].Spec.Runtime
		if rt.MaxApps == 0 {
			rt.MaxApps = DefaultMaxApps
		}
		if rt.IdleTimeout.Duration == 0 {
			rt.IdleTimeout.Duration = DefaultIdleTimeout
		}
	}
	defaulted := map[*Placement]*Placement{}
	for i := range m.Apps {
		s := &m.Apps[i].Spec
		if s.State == "" {
			s.State = DefaultState
		}
		if s.Placement != nil && s.Placement.Strategy == "" {
			// A copy, since a generated app shares its template's placement with every other one; and
			// one copy for all of them, which validation then checks once.
			p, ok := defaulted[s.Placement]
			if !ok {
				c := *s.Placement
				c.Strategy = DefaultStrategy
				p = &c
				defaulted[s.Placement] = p
			}
			s.Placement = p
		}
		if s.Database.Driver == "" {
			s.Database.Driver = DefaultDriver
		}
		if s.Database.Driver == DriverPostgres && s.Database.Isolation == "" {
			s.Database.Isolation = DefaultIsolation
		}
	}
}
