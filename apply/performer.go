package apply

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// ErrDataLoss is what FleetPerformer returns (wrapped) for an action that loses data when AllowDataLoss
// is off.
var ErrDataLoss = errors.New("the action loses data; apply it with --allow-data-loss")

// Defaults of FleetPerformer.
const (
	DefaultWaitTimeout  = 2 * time.Minute
	DefaultPollInterval = 50 * time.Millisecond
)

// FleetPerformer performs plan actions on real environments and runtimes: environments through their
// providers, apps through each runtime's management API. Every action is idempotent: an environment's
// Apply converges, deleting an absent app succeeds, and an app's write is compare-and-set on the
// generation the plan observed (If-Match).
//
// It is safe for concurrent use once built; Endpoints is updated, under a lock, as environments are
// created or changed.
type FleetPerformer struct {
	// Fleet names the fleet; every app written is labelled spec.LabelFleet=Fleet.
	Fleet string
	// Labels are put on every app written, beside the declared ones and the fleet's.
	Labels map[string]string
	// Providers holds each environment's provider by environment name, undeclared ones included.
	Providers map[string]providers.Provider
	// Envs are the declared environments by name.
	Envs map[string]spec.Environment
	// Apps are the declared apps by name, secrets resolved.
	Apps map[string]spec.App
	// Endpoints are the observed management APIs by environment name.
	Endpoints map[string]providers.Endpoint
	// AllowDataLoss lets actions that lose data run, and lets a runtime drop data when it migrates.
	AllowDataLoss bool
	// WaitTimeout bounds how long an app may take to reach its declared state (default 2m).
	WaitTimeout time.Duration
	// PollInterval is how often an app's status is read while waiting (default 50ms).
	PollInterval time.Duration

	mu sync.Mutex
}

// Perform does one action. See FleetPerformer.
func (f *FleetPerformer) Perform(ctx context.Context, a plan.Action) error {
	if a.Blocked != "" {
		return fmt.Errorf("%s: %w: %s", a.Address, plan.ErrBlocked, a.Blocked)
	}
	if a.DataLoss && a.Kind.Changes() && !f.AllowDataLoss {
		return fmt.Errorf("%s: %w", a.Address, ErrDataLoss)
	}
	var err error
	switch a.ResourceType {
	case plan.TypeEnvironment:
		err = f.environment(ctx, a)
	case plan.TypeApp:
		err = f.app(ctx, a)
	default:
		err = fmt.Errorf("unknown resource type %q", a.ResourceType)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", a.Address, err)
	}
	return nil
}

func (f *FleetPerformer) environment(ctx context.Context, a plan.Action) error {
	env, declared := f.Envs[a.Name]
	if !declared {
		env = spec.Environment{APIVersion: spec.APIVersion, Kind: spec.KindEnvironment,
			Metadata: spec.Metadata{Name: a.Name}, Spec: spec.EnvironmentSpec{Provider: a.Provider}}
	}
	p := f.Providers[a.Name]
	if p == nil {
		return fmt.Errorf("no %s provider for environment %s", cmp.Or(a.Provider, env.Spec.Provider), a.Name)
	}
	switch a.Kind {
	case plan.Create, plan.Update:
		if !declared {
			return fmt.Errorf("environment %s is not declared", a.Name)
		}
		var ep providers.Endpoint
		var err error
		if pa, ok := p.(providers.PlanApplier); ok && a.ProviderPlan != "" {
			// Exactly what the plan showed: the provider's own plan, refused by it when stale.
			ep, err = pa.ApplyPlan(ctx, env, a.ProviderPlan)
		} else {
			ep, err = p.Apply(ctx, env)
		}
		if err != nil {
			return fmt.Errorf("%s runtime: %w", env.Spec.Provider, err)
		}
		f.mu.Lock()
		if f.Endpoints == nil {
			f.Endpoints = map[string]providers.Endpoint{}
		}
		f.Endpoints[a.Name] = ep
		f.mu.Unlock()
		return nil
	case plan.Delete:
		if err := p.Destroy(ctx, env); err != nil && !errors.Is(err, providers.ErrNotFound) {
			return fmt.Errorf("destroy %s runtime: %w", env.Spec.Provider, err)
		}
		f.mu.Lock()
		delete(f.Endpoints, a.Name)
		f.mu.Unlock()
		return nil
	case plan.NoOp, plan.Unknown:
		return nil
	default:
		return fmt.Errorf("%s of an environment is not supported", a.Kind)
	}
}

func (f *FleetPerformer) client(env string) (*api.Client, error) {
	f.mu.Lock()
	ep, ok := f.Endpoints[env]
	f.mu.Unlock()
	if !ok || ep.URL == "" {
		return nil, fmt.Errorf("environment %s has no known endpoint; its runtime is not up", env)
	}
	return api.NewClient(ep.URL, ep.Token), nil
}

func (f *FleetPerformer) app(ctx context.Context, a plan.Action) error {
	switch a.Kind {
	case plan.NoOp, plan.Unknown:
		return nil
	case plan.Delete:
		return f.deleteApp(ctx, a.Environment, a.Name)
	case plan.Move:
		return f.moveApp(ctx, a)
	}
	c, err := f.client(a.Environment)
	if err != nil {
		return err
	}
	switch a.Kind {
	case plan.Create, plan.Update:
		return f.putApp(ctx, c, a.Name, a.ObservedGeneration)
	case plan.Replace:
		if err := f.deleteApp(ctx, cmp.Or(a.FromEnvironment, a.Environment), a.Name); err != nil {
			return err
		}
		return f.putApp(ctx, c, a.Name, 0)
	case plan.Start, plan.Stop:
		app, ok := f.Apps[a.Name]
		if !ok {
			return fmt.Errorf("app %s is not declared", a.Name)
		}
		return f.reach(ctx, c, a.Name, declaredState(app))
	default:
		return fmt.Errorf("%s of an app is not supported", a.Kind)
	}
}

// deleteApp archives the app's data and removes it; an app that is already gone is success.
func (f *FleetPerformer) deleteApp(ctx context.Context, env, name string) error {
	c, err := f.client(env)
	if err != nil {
		return err
	}
	if err := c.DeleteApp(ctx, name, false); err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("delete app in %s: %w", env, err)
	}
	return nil
}

// putApp writes the declared app (compare-and-set on generation; 0 creates), then brings it to its
// declared state.
func (f *FleetPerformer) putApp(ctx context.Context, c *api.Client, name string, generation int64) error {
	app, ok := f.Apps[name]
	if !ok {
		return fmt.Errorf("app %s is not declared", name)
	}
	if err := resolved(app); err != nil {
		return err
	}
	_, err := c.PutApp(ctx, name, api.PutAppRequest{Spec: app.Spec, Labels: f.labels(app)},
		api.PutOptions{IfMatch: generation, AllowDataLoss: f.AllowDataLoss})
	if err != nil {
		if api.IsConflict(err) {
			return fmt.Errorf("write refused (the app changed since the plan, or the change loses data): %w", err)
		}
		return fmt.Errorf("write app: %w", err)
	}
	return f.reach(ctx, c, name, declaredState(app))
}

// labels are the labels an app is written with: the declared ones and the fleet's.
func (f *FleetPerformer) labels(app spec.App) map[string]string {
	labels := maps.Clone(app.Metadata.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, f.Labels)
	if f.Fleet != "" {
		labels[spec.LabelFleet] = f.Fleet
	}
	return labels
}

// resolved checks that every secret of the app carries its value: a hash or a bare reference would be
// sent to the runtime in its place.
func resolved(app spec.App) error {
	if d := app.Spec.Database.DSN; d != nil && d.Value == "" {
		return fmt.Errorf("secret database.dsn (%s) is not resolved", d)
	}
	for _, k := range app.Spec.APIKeys {
		if k.Value.Value == "" {
			return fmt.Errorf("secret apiKeys.%s (%s) is not resolved", k.Name, k.Value)
		}
	}
	return nil
}

func declaredState(app spec.App) string { return cmp.Or(app.Spec.State, spec.StateRunning) }

// reach starts or stops the app as needed and waits until its status is the declared state. It fails
// with the app's own error when the app goes into error, or when WaitTimeout passes.
func (f *FleetPerformer) reach(ctx context.Context, c *api.Client, name, state string) error {
	timeout := cmp.Or(f.WaitTimeout, DefaultWaitTimeout)
	poll := cmp.Or(f.PollInterval, DefaultPollInterval)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	asked := false
	last := ""
	for {
		app, err := c.GetApp(wctx, name)
		if err != nil {
			if wctx.Err() != nil {
				return fmt.Errorf("app did not reach %s within %s (status %s)", state, timeout, cmp.Or(last, "unknown"))
			}
			return fmt.Errorf("read app: %w", err)
		}
		last = app.Status
		switch {
		case app.Status == state:
			return nil
		case app.Status == api.StatusError && asked:
			return fmt.Errorf("app is in error: %s", cmp.Or(app.Error, "no message"))
		case !asked && needsPush(app.Status, state):
			asked = true
			if state == spec.StateRunning {
				_, err = c.StartApp(wctx, name)
			} else {
				_, err = c.StopApp(wctx, name)
			}
			if err != nil {
				return fmt.Errorf("%s app: %w", verbFor(state), err)
			}
			continue
		}
		t := time.NewTimer(poll)
		select {
		case <-wctx.Done():
			t.Stop()
			if app.Status == api.StatusError {
				return fmt.Errorf("app is in error: %s", cmp.Or(app.Error, "no message"))
			}
			return fmt.Errorf("app did not reach %s within %s (status %s)", state, timeout, app.Status)
		case <-t.C:
		}
	}
}

// needsPush reports whether an app in status must be asked to start or stop to reach state: it is at
// rest in the other state, or in error.
func needsPush(status, state string) bool {
	switch status {
	case api.StatusError:
		return true
	case api.StatusStopped:
		return state == spec.StateRunning
	case api.StatusRunning:
		return state == spec.StateStopped
	default:
		return false
	}
}

func verbFor(state string) string {
	if state == spec.StateRunning {
		return "start"
	}
	return "stop"
}
