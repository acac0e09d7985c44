package gitops

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/gitops/gitsync"
	"github.com/appfleet/appfleet/plan"
)

// maxSyncs is how many recent syncs the status keeps.
const maxSyncs = 50

// Status is what /api/status answers and the status page shows.
type Status struct {
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
	Path   string `json:"path"`
	Fleet  string `json:"fleet,omitempty"`
	// Ready is true once the branch was fetched and its head handled (applied or refused).
	Ready bool `json:"ready"`
	// Health sums everything up: synced, progressing, degraded (drift, a refused commit, a failing
	// remote while the last good commit runs) or failed (nothing applied yet, or the last apply failed).
	Health string `json:"health"`

	// Head is the newest commit fetched; Applied the commit that runs (the last good one).
	Head    *gitsync.Commit `json:"head,omitempty"`
	Applied *gitsync.Commit `json:"applied,omitempty"`
	// AppliedAt is when Applied finished applying.
	AppliedAt *time.Time `json:"appliedAt,omitempty"`
	// Refused is the last commit that did not validate, with its diagnostics; cleared when a later
	// commit applies.
	Refused *Refusal `json:"refused,omitempty"`
	// Failing is set while the head's apply fails; it is retried with backoff.
	Failing *Failure `json:"failing,omitempty"`
	// Remote says whether the last fetch worked, and when the next one is due after failures.
	Remote Remote `json:"remote"`
	// LastPlan is the last plan with changes the daemon carried out (or tried to).
	LastPlan *PlanRecord `json:"lastPlan,omitempty"`

	Environments []EnvStatus `json:"environments"`
	Apps         []AppStatus `json:"apps"`
	// Syncs are the most recent syncs, newest first.
	Syncs []Sync `json:"syncs"`
}

// Health values.
const (
	HealthSynced      = "synced"
	HealthProgressing = "progressing"
	HealthDegraded    = "degraded"
	HealthFailed      = "failed"
)

// Refusal is a commit that was not applied because its manifests do not validate, or because its plan
// must not be carried out (blocked, or it loses data).
type Refusal struct {
	Commit      gitsync.Commit `json:"commit"`
	Reason      string         `json:"reason"`
	Diagnostics []string       `json:"diagnostics,omitempty"`
	At          time.Time      `json:"at"`
}

// Failure is an apply of a commit that failed and is being retried.
type Failure struct {
	Commit    gitsync.Commit `json:"commit"`
	Error     string         `json:"error"`
	Attempts  int            `json:"attempts"`
	NextRetry time.Time      `json:"nextRetry"`
}

// Remote is the state of the git remote.
type Remote struct {
	OK        bool       `json:"ok"`
	LastFetch *time.Time `json:"lastFetch,omitempty"`
	Error     string     `json:"error,omitempty"`
	Failures  int        `json:"failures,omitempty"`
	NextFetch *time.Time `json:"nextFetch,omitempty"`
}

// PlanRecord is a plan the daemon made, as text, with the commit it was made for.
type PlanRecord struct {
	Commit  string    `json:"commit"`
	Summary string    `json:"summary"`
	Text    string    `json:"text"`
	At      time.Time `json:"at"`
	// Plan is the plan itself, in appfleet's plan model.
	Plan *plan.Plan `json:"plan,omitempty"`
}

// EnvStatus is one environment as last observed.
type EnvStatus struct {
	Name      string `json:"name"`
	Provider  string `json:"provider"`
	Endpoint  string `json:"endpoint,omitempty"`
	Running   bool   `json:"running"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Watching is true while the runtime's event stream is connected.
	Watching bool `json:"watching"`
}

// AppStatus is one app as last observed (kept current by the runtimes' events).
type AppStatus struct {
	Name        string `json:"name"`
	Environment string `json:"environment"`
	Status      string `json:"status"`
	Generation  int64  `json:"generation,omitempty"`
	Error       string `json:"error,omitempty"`
	// Commit is the commit whose apply last wrote the app (its appfleet.dev/commit label).
	Commit string `json:"commit,omitempty"`
	// Policy is the app's drift policy: heal, notify or ignore.
	Policy string `json:"policy"`
	// Drift lists what differs from the manifest (empty: in sync); HealBackoff says when a heal that
	// keeps being undone is tried next.
	Drift       []string   `json:"drift,omitempty"`
	Heals       int        `json:"heals,omitempty"`
	HealBackoff *time.Time `json:"nextHeal,omitempty"`
}

// Sync is one pass of the daemon's loop that did something: applied a commit, refused one, healed
// drift, or failed.
type Sync struct {
	Commit   string        `json:"commit"`
	Trigger  string        `json:"trigger"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"durationNs"`
	// Result is applied, unchanged, refused, failed, healed or drift.
	Result  string `json:"result"`
	Summary string `json:"summary,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Sync results.
const (
	ResultApplied   = "applied"
	ResultUnchanged = "unchanged"
	ResultRefused   = "refused"
	ResultFailed    = "failed"
	ResultHealed    = "healed"
	ResultDrift     = "drift"
)

// statusBoard holds the status under a lock; readers get copies.
type statusBoard struct {
	mu sync.Mutex
	st Status
	// apps by environment and name, kept current by events.
	apps map[string]*AppStatus
}

func newStatusBoard(repo, branch, path string) *statusBoard {
	return &statusBoard{st: Status{Repo: repo, Branch: branch, Path: path, Health: HealthProgressing}, apps: map[string]*AppStatus{}}
}

func (b *statusBoard) update(f func(st *Status)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.st)
}

// get returns a deep enough copy of the status for rendering.
func (b *statusBoard) get() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.st
	st.Environments = slices.Clone(st.Environments)
	st.Syncs = slices.Clone(st.Syncs)
	st.Apps = make([]AppStatus, 0, len(b.apps))
	for _, a := range b.apps {
		c := *a
		c.Drift = slices.Clone(a.Drift)
		st.Apps = append(st.Apps, c)
	}
	sort.Slice(st.Apps, func(i, j int) bool { return st.Apps[i].Name < st.Apps[j].Name })
	st.Health = health(st)
	return st
}

func health(st Status) string {
	switch {
	case st.Applied == nil && (st.Refused != nil || st.Failing != nil):
		return HealthFailed
	case st.Failing != nil:
		return HealthFailed
	case !st.Ready:
		return HealthProgressing
	}
	for _, e := range st.Environments {
		if !e.Reachable {
			return HealthDegraded
		}
	}
	for _, a := range st.Apps {
		if a.Status == api.StatusError || (len(a.Drift) > 0 && a.Policy != "ignore") {
			return HealthDegraded
		}
	}
	if st.Refused != nil || !st.Remote.OK {
		return HealthDegraded
	}
	return HealthSynced
}

func (b *statusBoard) addSync(s Sync) {
	b.update(func(st *Status) {
		st.Syncs = append([]Sync{s}, st.Syncs...)
		if len(st.Syncs) > maxSyncs {
			st.Syncs = st.Syncs[:maxSyncs]
		}
	})
}

// app returns the app's entry, creating it; the caller holds b.mu.
func (b *statusBoard) appLocked(name string) *AppStatus {
	a, ok := b.apps[name]
	if !ok {
		a = &AppStatus{Name: name}
		b.apps[name] = a
	}
	return a
}

// appEvent applies a runtime event to the app's entry.
func (b *statusBoard) appEvent(env string, ev api.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev.Type {
	case api.EventDeleted:
		if a, ok := b.apps[ev.Name]; ok && a.Environment == env {
			a.Status, a.Generation = "absent", 0
		}
	case api.EventCreated, api.EventUpdated, api.EventStatus:
		if ev.App == nil {
			return
		}
		a, ok := b.apps[ev.Name]
		if !ok {
			return // not an app of this fleet
		}
		if a.Environment != env && a.Status != "absent" {
			return
		}
		a.Status, a.Generation, a.Error = ev.App.Status, ev.App.Generation, ev.App.Error
		a.Commit = ev.App.Labels[LabelCommit]
	}
}
