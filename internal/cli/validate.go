package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/appfleet/appfleet/spec"
	"github.com/spf13/cobra"
)

type validateOptions struct {
	IO     *IOStreams
	Paths  []string
	Output string
}

func newValidateCmd(f *Factory) *cobra.Command {
	opts := &validateOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check manifests: exit 0 when valid, 1 when not",
		Long: `Validate reads the manifests in the given files and directories ("-" for stdin; the current
directory when none is given) and reports every problem it finds, each with its file:line:column and a
hint at the fix. Diagnostics go to stderr; with -o json they go to stdout as one JSON document.`,
		Example: `  appfleet validate
  appfleet validate examples/single-app
  cat app.yaml | appfleet validate -
  appfleet validate -o json manifests/`,
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Paths = args
			return runValidate(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// validateResult is the JSON form of validate's result.
type validateResult struct {
	Valid        bool              `json:"valid"`
	ErrorCount   int               `json:"errorCount"`
	WarningCount int               `json:"warningCount"`
	Diagnostics  []spec.Diagnostic `json:"diagnostics"`
	Fleet        string            `json:"fleet,omitempty"`
	Environments int               `json:"environments"`
	Apps         int               `json:"apps"`
}

var errValidateFailed = errors.New("manifests are invalid")

func runValidate(_ context.Context, opts *validateOptions) error {
	if opts.Output != "text" && opts.Output != "json" && opts.Output != "" {
		return fmt.Errorf("unknown output format %q for validate; use text or json", opts.Output)
	}
	m, diags := spec.Load(opts.Paths, opts.IO.In)
	res := validateResult{
		Valid:        !diags.HasErrors(),
		ErrorCount:   len(diags.Errors()),
		WarningCount: len(diags.Warnings()),
		Diagnostics:  diags,
	}
	if res.Diagnostics == nil {
		res.Diagnostics = []spec.Diagnostic{}
	}
	if res.Valid {
		res.Fleet, res.Environments, res.Apps = m.Name, len(m.Environments), len(m.Apps)
	}

	if opts.Output == "json" {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
		if !res.Valid {
			return silent(errValidateFailed)
		}
		return nil
	}

	printDiagnostics(opts.IO.ErrOut, diags)
	if !res.Valid {
		fmt.Fprintf(opts.IO.ErrOut, "Invalid: %s.\n", validateCounts(res.ErrorCount, res.WarningCount))
		return silent(errValidateFailed)
	}
	_, err := fmt.Fprintf(opts.IO.Out, "Valid: fleet %q, %d %s, %d %s.\n", m.Name,
		res.Environments, validatePlural(res.Environments, "environment", "environments"),
		res.Apps, validatePlural(res.Apps, "app", "apps"))
	return err
}

func validateCounts(errs, warnings int) string {
	s := fmt.Sprintf("%d %s", errs, validatePlural(errs, "error", "errors"))
	if warnings > 0 {
		s += fmt.Sprintf(", %d %s", warnings, validatePlural(warnings, "warning", "warnings"))
	}
	return s
}

func validatePlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
