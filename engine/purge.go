package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
)

// Purged is what Purge removed of one environment's archived data.
type Purged struct {
	Environment string
	Provider    string
	// Removed names what was removed (archive directories, volumes); empty when there was nothing.
	Removed []string
	// Unsupported is set when the environment's provider keeps no archive it can remove.
	Unsupported bool
}

// Purge removes, for good, the data that destroying the declared environments archived (only those that
// req.Targets names, when it names any environment): the archive directories of local environments, the
// archived volumes of docker ones. It never touches the data of an environment that exists, and asks no
// question: the caller confirms first. Every environment is tried; the errors are joined.
func (e *Engine) Purge(ctx context.Context, req Request) ([]Purged, error) {
	fl, err := e.load(req, false, nil)
	if err != nil {
		return nil, err
	}
	var only []string
	for _, t := range req.Targets {
		if name, ok := strings.CutPrefix(t, string(plan.EnvironmentAddress(""))); ok {
			only = append(only, name)
		}
	}
	var out []Purged
	var errs []error
	for _, env := range fl.manifests.Environments {
		name := env.Metadata.Name
		if len(req.Targets) > 0 && !slices.Contains(only, name) {
			continue
		}
		pg := Purged{Environment: name, Provider: env.Spec.Provider}
		p, err := e.cfg.Registry.New(env.Spec.Provider, fl.config)
		if err != nil {
			errs = append(errs, fmt.Errorf("environment %q: %w", name, err))
			continue
		}
		if c, ok := p.(io.Closer); ok {
			defer c.Close()
		}
		purger, ok := p.(providers.Purger)
		if !ok {
			pg.Unsupported = true
			out = append(out, pg)
			continue
		}
		pg.Removed, err = purger.Purge(ctx, env)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, pg)
	}
	return out, errors.Join(errs...)
}
