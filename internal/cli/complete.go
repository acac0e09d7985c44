package cli

import (
	"bytes"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/spec"
)

// completeFlags registers shell completions for a command's flags: the values of -o (outputs, when
// given) and, when it has --target, the addresses the manifests named by its arguments declare.
func completeFlags(cmd *cobra.Command, outputs ...string) {
	if len(outputs) > 0 {
		_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputs, cobra.ShellCompDirectiveNoFileComp))
	}
	if cmd.Flags().Lookup("target") != nil {
		_ = cmd.RegisterFlagCompletionFunc("target", completeTargets)
	}
}

// completeTargets offers the address of every environment and app the manifests under args (the current
// directory when none) declare. Invalid manifests offer what could be read; secrets are never resolved.
func completeTargets(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	paths := slices.DeleteFunc(slices.Clone(args), func(p string) bool { return p == "-" })
	if len(paths) == 0 {
		paths = []string{"."}
	}
	m, _ := spec.LoadWith(paths, &bytes.Buffer{}, spec.LoadOptions{SecretsOptional: true})
	var out []string
	if m != nil {
		for _, e := range m.Environments {
			out = append(out, string(plan.EnvironmentAddress(e.Metadata.Name)))
		}
		for _, a := range m.Apps {
			out = append(out, string(plan.AppAddress(a.Metadata.Name)))
		}
	}
	out = slices.DeleteFunc(out, func(a string) bool { return !strings.HasPrefix(a, toComplete) })
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}
