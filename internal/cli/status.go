package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/spec"
	"github.com/spf13/cobra"
)

type statusOptions struct {
	F      *Factory
	Paths  []string
	Output string
}

func newStatusCmd(f *Factory) *cobra.Command {
	opts := &statusOptions{F: f}
	cmd := &cobra.Command{
		Use:   "status [PATH...]",
		Short: "Show every environment and app as it runs now",
		Long: `Status observes every environment the manifests declare (and those the fleet owns but no longer
declares) and asks each runtime for its apps, then prints one table of environments (provider, health,
app count, endpoint, error) and one of apps (environment, status, generation, requests, error); -o json
prints the same as JSON. It changes nothing and needs no secret: an unreadable secret is a warning.
An environment that could not be observed is shown as unknown, never as absent.`,
		Example: `  appfleet status examples/shared-memory
  appfleet status . -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Paths = args
			return runStatus(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "table", "output format: table or json")
	completeFlags(cmd, "table", "json")
	return cmd
}

// statusReport is the JSON form of status.
type statusReport struct {
	Fleet        string              `json:"fleet"`
	Environments []environmentStatus `json:"environments"`
	Apps         []appStatus         `json:"apps"`
}

type environmentStatus struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	Declared bool   `json:"declared"`
	Endpoint string `json:"endpoint,omitempty"`
	Health   string `json:"health"` // absent, unknown, stopped, unreachable, healthy
	Error    string `json:"error,omitempty"`
	Apps     int    `json:"apps"`
}

type appStatus struct {
	Name        string `json:"name"`
	Environment string `json:"environment"`
	Declared    bool   `json:"declared"`
	Desired     string `json:"desired,omitempty"`
	Status      string `json:"status"`
	Generation  int64  `json:"generation"`
	Requests    int64  `json:"requests"`
	Errors      int64  `json:"errors"`
	Error       string `json:"error,omitempty"`
}

func runStatus(ctx context.Context, opts *statusOptions) error {
	if opts.Output != "table" && opts.Output != "json" {
		return fmt.Errorf("unknown output format %q for status; use table or json", opts.Output)
	}
	res, err := opts.F.newEngine().Observe(ctx, engine.Request{Paths: opts.Paths, Stdin: opts.F.IO.In}, newSink(opts.F.IO, ""))
	if err != nil {
		return cliError(err)
	}
	rep := buildStatus(res.Manifests, res.Snapshot)
	if opts.Output == "json" {
		enc := json.NewEncoder(opts.F.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	w := tabwriter.NewWriter(opts.F.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ENVIRONMENT\tPROVIDER\tHEALTH\tAPPS\tENDPOINT\tERROR")
	for _, e := range rep.Environments {
		health := e.Health
		if !e.Declared {
			health += " (not declared)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", e.Name, e.Provider, health, e.Apps, dash(e.Endpoint), dash(e.Error))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "APP\tENVIRONMENT\tSTATUS\tGENERATION\tREQUESTS\tERROR")
	for _, a := range rep.Apps {
		st := a.Status
		if a.Declared && a.Desired != "" && a.Status != a.Desired {
			st += " (want " + a.Desired + ")"
		}
		if !a.Declared {
			st += " (not declared)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", a.Name, a.Environment, st, a.Generation, a.Requests, dash(a.Error))
	}
	return w.Flush()
}

func buildStatus(m *spec.Manifests, snap plan.Snapshot) statusReport {
	rep := statusReport{Fleet: snap.Fleet, Environments: []environmentStatus{}, Apps: []appStatus{}}
	declaredApps := map[string]string{}
	for _, a := range m.Apps {
		declaredApps[a.Metadata.Name] = a.Spec.State
	}
	seenApps := map[string]bool{}
	names := make([]string, 0, len(snap.Environments))
	for n := range snap.Environments {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		es := snap.Environments[n]
		_, declared := m.Environment(n)
		health := "healthy"
		switch {
		case !es.Exists && es.Error != "":
			health = "unknown" // it could not be observed: it may exist
		case !es.Exists:
			health = "absent"
		case !es.Running:
			health = "stopped"
		case !es.Reachable:
			health = "unreachable"
		}
		rep.Environments = append(rep.Environments, environmentStatus{
			Name: n, Provider: es.Provider, Declared: declared, Endpoint: es.Endpoint,
			Health: health, Error: es.Error, Apps: len(es.Apps),
		})
		for _, a := range es.Apps {
			desired, ok := declaredApps[a.Name]
			seenApps[a.Name] = true
			rep.Apps = append(rep.Apps, appStatus{
				Name: a.Name, Environment: n, Declared: ok, Desired: desired, Status: a.Status,
				Generation: a.Generation, Requests: a.Stats.Requests, Errors: a.Stats.Errors, Error: a.Error,
			})
		}
	}
	for _, a := range m.Apps {
		if !seenApps[a.Metadata.Name] {
			// An app whose runtime exists but does not answer may well be there: say so rather than absent.
			st := "absent"
			if es := snap.Environments[a.Spec.Environment]; (es.Exists && !es.Reachable) || es.Error != "" {
				st = "unknown"
			}
			// An app placed by a selector has no environment until a plan places it.
			env := cmp.Or(a.Spec.Environment, "(not placed)")
			rep.Apps = append(rep.Apps, appStatus{Name: a.Metadata.Name, Environment: env, Declared: true, Desired: a.Spec.State, Status: st})
		}
	}
	sort.Slice(rep.Apps, func(i, j int) bool { return rep.Apps[i].Name < rep.Apps[j].Name })
	return rep
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
