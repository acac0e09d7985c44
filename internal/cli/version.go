package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/appfleet/appfleet/internal/version"
	"github.com/spf13/cobra"
)

type versionOptions struct {
	IO     *IOStreams
	Output string
}

func newVersionCmd(f *Factory) *cobra.Command {
	opts := &versionOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	completeFlags(cmd, "text", "json")
	return cmd
}

func runVersion(_ context.Context, opts *versionOptions) error {
	info := version.Get()
	switch opts.Output {
	case "json":
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	case "text", "":
		_, err := fmt.Fprint(opts.IO.Out, versionText(info))
		return err
	default:
		return fmt.Errorf("unknown output format %q for version; use text or json", opts.Output)
	}
}

// versionText is the version as 'appfleet version' and 'appfleet --version' print it.
func versionText(info version.Info) string {
	commit := info.Commit
	if info.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("appfleet %s\ncommit: %s\ngo: %s %s\n", info.Version, commit, info.GoVersion, info.Platform)
}
