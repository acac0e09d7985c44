package gitops

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/gitops/gitsync"
	"github.com/appfleet/appfleet/gitops/notify"
	"github.com/appfleet/appfleet/internal/lock"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// LabelCommit is the app label that records the git commit whose apply last wrote the app.
const LabelCommit = spec.LabelCommit

// Config configures a Daemon.
type Config struct {
	// Git says which branch of which repository to follow; its Dir is set by New (under StateDir).
	Git gitsync.Options
	// Path is the directory (or file) of the manifests inside the repository; empty means all of it.
	Path string
	// Interval is how often the branch is fetched (with ±10% jitter); a webhook fetches at once. The
	// fleet is fully observed again at the same pace, at most once a minute (events cover the rest).
	Interval time.Duration
	// StateDir holds the clone, the daemon's lock and the fleet's state (runtime data, tokens).
	StateDir string
	// SecretsDir is what relative fromFile secret references resolve against (default: working directory).
	SecretsDir string
	// SelfHeal makes heal the drift policy of every app whose manifests set none.
	SelfHeal bool
	// Prune deletes apps and environments the fleet owns but no longer declares.
	Prune bool
	// WebhookSecret checks /hooks/*; empty refuses every webhook.
	WebhookSecret []byte
	// Notify are the webhook URLs notifications are posted to.
	Notify []string
	// Registry builds providers; Binary is the runtime executable (empty: this one).
	Registry providers.Registry
	Binary   string
	// ShutdownGrace bounds how long an apply in flight may run on after the daemon is asked to stop.
	ShutdownGrace time.Duration
	// Debounce is how long the loop waits after a trigger for more (default 100ms).
	Debounce time.Duration
	// Logger receives structured logs.
	Logger *slog.Logger
}

// Daemon keeps a fleet equal to what a git branch declares. Build it with New, run it with Run.
type Daemon struct {
	cfg    Config
	log    *slog.Logger
	repo   *gitsync.Repo
	eng    *engine.Engine
	lock   *lock.Lock
	board  *statusBoard
	notify *notify.Notifier
	met    *metrics
	drift  *driftWatch

	kickc chan struct{}
	mu    sync.Mutex
	want  map[string]bool // pending triggers: fetch, webhook, drift, resync

	// Owned by the loop goroutine.
	lastGood     *spec.Manifests
	lastGoodHash string
	handled      string // the last head commit handled (applied, refused or failing)
	failures     int
	nextRetry    time.Time
	fetchFails   int
	nextFetch    time.Time
	nextResync   time.Time
	heals        map[string]*healState
}

// healState counts the heals of one address, to back off when something keeps undoing them.
type healState struct {
	count int
	last  time.Time
	next  time.Time
	said  bool // the log has said that this address's heals back off, until its next heal
}

// New checks the config, takes the daemon's lock on the state dir (a second daemon on the same state dir
// fails, naming the holder) and opens the clone.
func New(cfg Config) (*Daemon, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 2 * time.Minute
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		return nil, errors.New("gitops: no provider registry")
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	cfg.StateDir = abs
	lk, err := lock.Acquire(filepath.Join(cfg.StateDir, "watch"), "appfleet watch "+gitsync.Redact(cfg.Git.URL))
	if err != nil {
		return nil, err
	}
	cfg.Git.Dir = filepath.Join(cfg.StateDir, "watch", "repo.git")
	repo, err := gitsync.Open(cfg.Git)
	if err != nil {
		_ = lk.Release()
		return nil, err
	}
	d := &Daemon{
		cfg: cfg, log: cfg.Logger, repo: repo, lock: lk,
		eng:    engine.New(engine.Config{Registry: cfg.Registry, StateDir: cfg.StateDir, Binary: cfg.Binary}),
		board:  newStatusBoard(repo.URL(), repo.Branch(), cmp.Or(cfg.Path, ".")),
		notify: notify.New(cfg.Notify, cfg.Logger),
		kickc:  make(chan struct{}, 1),
		want:   map[string]bool{},
		heals:  map[string]*healState{},
	}
	d.met = newMetrics(d.board)
	d.drift = newDriftWatch(d)
	return d, nil
}

// Triggers of the loop.
const (
	triggerPoll    = "poll"
	triggerWebhook = "webhook"
	triggerEvent   = "event"
	triggerRetry   = "retry"
	triggerResync  = "resync"
)

// kick asks the loop to run for reason; triggers that arrive close together are handled in one run.
func (d *Daemon) kick(reason string) {
	d.mu.Lock()
	d.want[reason] = true
	d.mu.Unlock()
	select {
	case d.kickc <- struct{}{}:
	default:
	}
}

func (d *Daemon) takeTriggers() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.want
	d.want = map[string]bool{}
	return w
}

// Run runs the loop until ctx ends. An apply in flight when ctx ends finishes (within ShutdownGrace)
// before Run returns.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.lock.Release()
	defer d.notify.Close(5 * time.Second)
	defer d.drift.stopAll()
	d.kick(triggerPoll)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping")
			return nil
		case <-d.kickc:
		case <-timer.C:
		}
		// Debounce: a burst of pushes, webhooks and events is one pass.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d.cfg.Debounce):
		}
		d.pass(ctx, d.takeTriggers())
		timer.Reset(d.untilNext())
	}
}

// untilNext is the time until the next scheduled work: a fetch, a retry, a resync or a heal.
func (d *Daemon) untilNext() time.Duration {
	next := d.nextFetch
	for _, t := range []time.Time{d.nextRetry, d.nextResync} {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	for _, h := range d.heals {
		if !h.next.IsZero() && h.next.Before(next) {
			next = h.next
		}
	}
	return max(time.Until(next), 10*time.Millisecond)
}

// jittered is the interval ±10%.
func (d *Daemon) jittered() time.Duration {
	j := float64(d.cfg.Interval) * 0.1
	return d.cfg.Interval + time.Duration((rand.Float64()*2-1)*j)
}

// pass is one run of the loop: fetch when due, handle a new head (or retry a failed one), else check
// drift when an event or the resync asks.
func (d *Daemon) pass(ctx context.Context, trig map[string]bool) {
	now := time.Now()
	if trig[triggerWebhook] || trig[triggerPoll] || !now.Before(d.nextFetch) {
		d.fetch(ctx, trig[triggerWebhook])
	}
	if ctx.Err() != nil {
		return
	}
	head := d.board.get().Head
	reason := triggerPoll
	if trig[triggerWebhook] {
		reason = triggerWebhook
	}
	switch {
	case head != nil && head.Hash != d.handled:
		d.handleCommit(ctx, *head, reason)
		return
	case head != nil && d.failures > 0 && !now.Before(d.nextRetry):
		d.handleCommit(ctx, *head, triggerRetry)
		return
	}
	if d.lastGood == nil {
		return
	}
	if trig[triggerEvent] || d.healDue(now) || !now.Before(d.nextResync) {
		why := triggerEvent
		if !trig[triggerEvent] {
			why = triggerResync
		}
		d.checkDrift(ctx, why)
	}
}

// fetch fetches the branch, backing off while the remote fails.
func (d *Daemon) fetch(ctx context.Context, webhook bool) {
	if !webhook && time.Now().Before(d.nextFetch) && d.fetchFails > 0 {
		return // backing off
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	head, err := d.repo.Fetch(fctx)
	d.met.fetches.WithLabelValues(resultLabel(err)).Inc()
	now := time.Now()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		d.fetchFails++
		wait := min(d.cfg.Interval<<min(d.fetchFails-1, 10), max(8*d.cfg.Interval, 5*time.Minute))
		d.nextFetch = now.Add(wait)
		next := d.nextFetch
		d.log.Warn("fetch failed; the last good commit stays applied", "error", err, "failures", d.fetchFails, "retryIn", wait.Round(time.Millisecond))
		d.board.update(func(st *Status) {
			st.Remote = Remote{OK: false, LastFetch: st.Remote.LastFetch, Error: err.Error(), Failures: d.fetchFails, NextFetch: &next}
		})
		return
	}
	if d.fetchFails > 0 {
		d.log.Info("the remote answers again", "after", d.fetchFails)
	}
	d.fetchFails = 0
	d.nextFetch = now.Add(d.jittered())
	d.log.Debug("fetched", "head", head.Short, "took", time.Since(start).Round(time.Millisecond))
	d.board.update(func(st *Status) {
		st.Remote = Remote{OK: true, LastFetch: &now}
		st.Head = &head
	})
}

// handleCommit loads the commit's manifests and applies them, or refuses the commit.
func (d *Daemon) handleCommit(ctx context.Context, c gitsync.Commit, trigger string) {
	start := time.Now()
	log := d.log.With("commit", c.Short)
	if c.Hash != d.handled {
		d.failures, d.nextRetry = 0, time.Time{}
	}
	d.handled = c.Hash
	m, diags, err := d.load(c)
	if err != nil || diags.HasErrors() {
		var lines []string
		for _, dg := range diags {
			if dg.Severity == spec.SeverityError {
				lines = append(lines, diagLine(dg))
			}
		}
		reason := "the manifests do not validate"
		if err != nil {
			reason = err.Error()
		}
		log.Error("commit refused: "+reason, "diagnostics", strings.Join(lines, "; "))
		d.refuse(c, reason, lines, trigger, start)
		return
	}
	res, err := d.apply(ctx, m, c, nil)
	d.recordPlan(c, res)
	switch {
	case err == nil:
		d.applied(ctx, c, m, res, trigger, start)
		return
	case errors.Is(err, plan.ErrBlocked) || isDataLoss(err):
		log.Error("commit refused: its plan must not be carried out", "error", err)
		d.refuse(c, err.Error(), nil, trigger, start)
	default:
		d.failed(ctx, c, err, trigger, start)
	}
	d.observe(ctx)
}

func isDataLoss(err error) bool {
	var dl *engine.DataLossError
	return errors.As(err, &dl)
}

// load reads the manifests from the commit's tree; secrets are resolved by the engine.
func (d *Daemon) load(c gitsync.Commit) (*spec.Manifests, spec.Diagnostics, error) {
	fsys, err := d.repo.Tree(c.Hash)
	if err != nil {
		return nil, nil, err
	}
	path := cmp.Or(strings.Trim(filepath.ToSlash(d.cfg.Path), "/"), ".")
	name := filepath.Base(path)
	if path == "." {
		name = strings.TrimSuffix(filepath.Base(d.repo.URL()), ".git")
	}
	m, diags := spec.LoadFS(fsys, []string{path}, spec.LoadOptions{Dir: d.cfg.SecretsDir, Name: name})
	return m, diags, nil
}

func diagLine(dg spec.Diagnostic) string {
	s := dg.String()
	if dg.Detail != "" {
		s += " (" + dg.Detail + ")"
	}
	return s
}

// apply runs the engine on m, labelling every app it writes with the commit.
func (d *Daemon) apply(ctx context.Context, m *spec.Manifests, c gitsync.Commit, targets []string) (*engine.Result, error) {
	// The apply is not cut short when the daemon is asked to stop: it finishes, within ShutdownGrace.
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		d.log.Info("waiting for the apply in flight to finish", "atMost", d.cfg.ShutdownGrace)
		t := time.AfterFunc(d.cfg.ShutdownGrace, cancel)
		context.AfterFunc(actx, func() { t.Stop() })
	})
	defer stop()
	d.drift.setApplying(true)
	defer d.drift.setApplying(false)
	start := time.Now()
	res, err := d.eng.Apply(actx, engine.Request{
		Manifests: m,
		Targets:   targets,
		Prune:     d.cfg.Prune,
		Holder:    "appfleet watch",
		Labels:    map[string]string{LabelCommit: c.Hash},
	}, nil)
	d.met.observeSync(err, time.Since(start))
	return res, err
}

// recordPlan keeps the last plan with changes for the status.
func (d *Daemon) recordPlan(c gitsync.Commit, res *engine.Result) {
	if res == nil || res.Plan == nil || !res.Plan.HasChanges() {
		return
	}
	var b bytes.Buffer
	_ = plan.RenderText(&b, res.Plan, plan.TextOptions{})
	rec := &PlanRecord{Commit: c.Hash, Summary: res.Plan.Summary().String(), Text: b.String(), At: time.Now().UTC(), Plan: res.Plan}
	d.board.update(func(st *Status) { st.LastPlan = rec })
}

// applied records a commit that applied, with what runs now, in one step of the status.
func (d *Daemon) applied(ctx context.Context, c gitsync.Commit, m *spec.Manifests, res *engine.Result, trigger string, start time.Time) {
	summary := "no changes"
	result := ResultUnchanged
	if res != nil && res.Plan != nil && res.Plan.HasChanges() {
		summary, result = res.Plan.Summary().String(), ResultApplied
	}
	recovered := d.failures > 0 || d.board.get().Refused != nil
	d.lastGood, d.lastGoodHash = m, c.Hash
	d.failures, d.nextRetry = 0, time.Time{}
	d.nextResync = time.Now().Add(d.resyncEvery())
	d.observe(ctx)
	now := time.Now().UTC()
	d.board.update(func(st *Status) {
		st.Fleet = m.Name
		st.Applied, st.AppliedAt, st.Failing, st.Refused, st.Ready = &c, &now, nil, nil, true
	})
	d.met.lastSuccess.SetToCurrentTime()
	d.board.addSync(Sync{Commit: c.Hash, Trigger: trigger, Started: start.UTC(), Duration: time.Since(start), Result: result, Summary: summary})
	d.log.Info("commit applied", "commit", c.Short, "result", result, "summary", summary, "took", time.Since(start).Round(time.Millisecond))
	if recovered {
		d.notify.Send(notify.Message{Key: "recovered/" + c.Hash, Text: fmt.Sprintf("appfleet: %s recovered: commit %s applied (%s)", m.Name, c.Short, summary),
			Details: notify.Details{Kind: notify.Recovered, Fleet: m.Name, Commit: c.Hash, Detail: summary}})
	}
}

func (d *Daemon) refuse(c gitsync.Commit, reason string, diags []string, trigger string, start time.Time) {
	now := time.Now().UTC()
	d.board.update(func(st *Status) {
		st.Refused = &Refusal{Commit: c, Reason: reason, Diagnostics: diags, At: now}
		st.Failing = nil
		st.Ready = true
	})
	d.failures = 0
	d.board.addSync(Sync{Commit: c.Hash, Trigger: trigger, Started: start.UTC(), Duration: time.Since(start), Result: ResultRefused, Error: reason})
	d.met.syncs.WithLabelValues(ResultRefused).Inc()
	text := fmt.Sprintf("appfleet: commit %s refused: %s", c.Short, reason)
	if len(diags) > 0 {
		text += "\n" + strings.Join(diags, "\n")
	}
	d.notify.Send(notify.Message{Key: "sync_failed/" + c.Hash, Text: text,
		Details: notify.Details{Kind: notify.SyncFailed, Fleet: d.fleetName(), Commit: c.Hash, Detail: reason}})
}

func (d *Daemon) failed(ctx context.Context, c gitsync.Commit, err error, trigger string, start time.Time) {
	if ctx.Err() != nil && errors.Is(err, engine.ErrInterrupted) {
		d.handled = "" // not finished: handle it again at the next start
		return
	}
	d.failures++
	wait := min(time.Second<<min(d.failures-1, 10), 5*time.Minute)
	d.nextRetry = time.Now().Add(wait)
	next := d.nextRetry
	d.log.Error("apply failed; retrying with backoff", "commit", c.Short, "error", err, "attempt", d.failures, "retryIn", wait)
	d.board.update(func(st *Status) {
		st.Failing = &Failure{Commit: c, Error: err.Error(), Attempts: d.failures, NextRetry: next}
		st.Ready = true
	})
	d.board.addSync(Sync{Commit: c.Hash, Trigger: trigger, Started: start.UTC(), Duration: time.Since(start), Result: ResultFailed, Error: err.Error()})
	d.notify.Send(notify.Message{Key: "sync_failed/" + c.Hash, Text: fmt.Sprintf("appfleet: applying commit %s failed: %v (retrying)", c.Short, err),
		Details: notify.Details{Kind: notify.SyncFailed, Fleet: d.fleetName(), Commit: c.Hash, Detail: err.Error()}})
}

func (d *Daemon) fleetName() string { return d.board.get().Fleet }

// resyncEvery is how often the whole fleet is observed again although no event said anything changed.
func (d *Daemon) resyncEvery() time.Duration { return max(d.cfg.Interval, time.Minute) }

// observe refreshes the status's environments and apps and the event streams to watch.
func (d *Daemon) observe(ctx context.Context) {
	if d.lastGood == nil {
		return
	}
	res, err := d.eng.Observe(ctx, engine.Request{Manifests: d.lastGood}, nil)
	if err != nil {
		d.log.Warn("observe", "error", err)
		return
	}
	d.recordObservation(res, nil)
}

// recordObservation puts what was observed (and the drift a plan found) in the status and starts or
// stops the event streams.
func (d *Daemon) recordObservation(res *engine.Result, drift map[string][]string) {
	m := d.lastGood
	envs := make([]EnvStatus, 0, len(res.Snapshot.Environments))
	apps := map[string]*AppStatus{}
	for _, a := range m.Apps {
		apps[a.Metadata.Name] = &AppStatus{Name: a.Metadata.Name, Environment: a.Spec.Environment, Status: "absent", Policy: d.policy(m, a.Metadata.Name)}
	}
	for _, name := range slices.Sorted(maps.Keys(res.Snapshot.Environments)) {
		e := res.Snapshot.Environments[name]
		envs = append(envs, EnvStatus{Name: e.Name, Provider: e.Provider, Endpoint: e.Endpoint, Running: e.Running, Reachable: e.Reachable, Error: e.Error,
			Watching: d.drift.watching(e.Name)})
		for _, o := range e.Apps {
			a, ok := apps[o.Name]
			if !ok || a.Environment != e.Name {
				continue
			}
			a.Status, a.Generation, a.Error, a.Commit = o.Status, o.Generation, o.Error, o.Labels[LabelCommit]
		}
		if !e.Reachable {
			for _, a := range apps {
				if a.Environment == e.Name {
					a.Status = "unknown"
				}
			}
		}
	}
	for addr, lines := range drift {
		if name, ok := strings.CutPrefix(addr, "app."); ok {
			if a, ok := apps[name]; ok {
				a.Drift = lines
			}
		}
	}
	for addr, h := range d.heals {
		if name, ok := strings.CutPrefix(addr, "app."); ok {
			if a, ok := apps[name]; ok {
				a.Heals = h.count
				if h.next.After(time.Now()) {
					t := h.next
					a.HealBackoff = &t
				}
			}
		}
	}
	d.board.mu.Lock()
	d.board.st.Environments = envs
	d.board.apps = apps
	d.board.mu.Unlock()
	d.drift.sync(res.Endpoints)
}

// policy is the drift policy of app name: its own, else the fleet's, else heal with --self-heal, else notify.
func (d *Daemon) policy(m *spec.Manifests, name string) string {
	if a, ok := m.App(name); ok && a.Spec.Drift != "" {
		return a.Spec.Drift
	}
	if m.Fleet != nil && m.Fleet.Spec.Drift != "" {
		return m.Fleet.Spec.Drift
	}
	if d.cfg.SelfHeal {
		return spec.DriftHeal
	}
	return spec.DriftNotify
}

func resultLabel(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
