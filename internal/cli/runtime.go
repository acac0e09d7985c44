package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultRuntimeListen is where a runtime listens unless told otherwise: loopback only.
const defaultRuntimeListen = "127.0.0.1:7410"

type runtimeServeOptions struct {
	IO               *IOStreams
	DataDir          string
	Listen           string
	TokenFile        string
	Name             string
	IdleTimeout      time.Duration
	MaxApps          int
	MaxOpenDatabases int
	ShutdownTimeout  time.Duration
	MaxRunning       int
	QueueDepth       int
	QueueTimeout     time.Duration
	ReadTimeout      time.Duration
	MaxRestoreSize   int64
	KeepAnswers      bool
	LogFormat        string
	LogLevel         string
}

func newRuntimeCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "Run the process that hosts apps",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newRuntimeServeCmd(f), newRuntimeProbeCmd(f))
	// --state-dir and --no-color act on the control plane's commands, not on a runtime: its help lists
	// only the flags that act on it.
	help := cmd.HelpFunc()
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		c.InheritedFlags().VisitAll(func(fl *pflag.Flag) { fl.Hidden = true })
		help(c, args)
	})
	return cmd
}

type runtimeProbeOptions struct {
	IO      *IOStreams
	URL     string
	Timeout time.Duration
}

// newRuntimeProbeCmd is the health check of a runtime in a container: the image has no shell and no
// curl, so the binary itself asks the runtime whether it is ready.
func newRuntimeProbeCmd(f *Factory) *cobra.Command {
	opts := &runtimeProbeOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "probe [--url URL]",
		Short: "Exit 0 when the runtime at URL answers /readyz, 1 otherwise (a container health check)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRuntimeProbe(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.URL, "url", "http://"+defaultRuntimeListen, "base URL of the runtime")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}

func runRuntimeProbe(ctx context.Context, opts *runtimeProbeOptions) error {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := api.NewClient(opts.URL, "").Ready(ctx); err != nil {
		return fmt.Errorf("runtime at %s is not ready: %w", opts.URL, err)
	}
	fmt.Fprintf(opts.IO.Out, "runtime at %s is ready\n", opts.URL)
	return nil
}

func newRuntimeServeCmd(f *Factory) *cobra.Command {
	opts := &runtimeServeOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "serve --data-dir DIR [--listen ADDR] [--token-file FILE]",
		Short: "Host apps and serve their data APIs and the management API",
		Long: `Serve runs a runtime: one process that hosts many isolated apps, each with its own database,
data model, API keys and lifecycle. Its registry lives in the data dir, so a restart brings every app back
to its desired state.

The management API needs the bearer token from --token-file (generated, mode 0600, when the file is
absent). The address the runtime really listens on (also with port 0) is printed on stderr and written to
DATA_DIR/runtime.addr. SIGTERM or Ctrl-C stops it gracefully.

One runtime per data dir: the runtime holds an exclusive lock on DATA_DIR/runtime.lock for its whole life
and records its pid, address and instance id there; a second runtime on the same dir exits 1 at once and
names the first.`,
		Annotations: map[string]string{annotationLongRunning: "true"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRuntimeServe(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.DataDir, "data-dir", "", "directory for the registry, the apps' databases and the archive (required)")
	fl.StringVar(&opts.Listen, "listen", defaultRuntimeListen, "host:port to listen on; port 0 picks a free port")
	fl.StringVar(&opts.TokenFile, "token-file", "", "file holding the management API token (default DATA_DIR/token)")
	fl.StringVar(&opts.Name, "name", "", "name shown in GET /v1/runtime (default the data dir's base name)")
	fl.IntVar(&opts.MaxApps, "max-apps", spec.DefaultMaxApps, "refuse to create more than this many apps; 0 means no bound")
	fl.IntVar(&opts.MaxOpenDatabases, "max-open-databases", 0, "keep at most this many apps' databases open, hibernating the least recently used; 0 derives it from the limit on open files")
	fl.DurationVar(&opts.IdleTimeout, "idle-timeout", 10*time.Minute, "close an app's database after this long without requests; 0 never")
	fl.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	fl.IntVar(&opts.MaxRunning, "max-running", 0, "requests of apps that run at once over all apps, the rest wait their turn in fair order (default: the CPUs the process may use)")
	fl.IntVar(&opts.QueueDepth, "queue-depth", 128, "requests of one app that may wait for a turn; more answer 503")
	fl.DurationVar(&opts.QueueTimeout, "queue-timeout", 5*time.Second, "how long a request of an app may wait for a turn before it answers 503")
	fl.DurationVar(&opts.ReadTimeout, "read-timeout", 10*time.Second, "how long a client may take to send a request's headers, and a record's body")
	fl.Int64Var(&opts.MaxRestoreSize, "max-restore-size", defaultMaxRestoreSize, "largest snapshot, in bytes, that PUT /v1/apps/{name}/restore takes")
	fl.BoolVar(&opts.KeepAnswers, "keep-answers", true, "let each app on SQLite keep the answers to reads asked for twice (32 KiB at most) until its next write")
	fl.StringVar(&opts.LogFormat, "log-format", "json", "log format on stderr: json or text")
	fl.StringVar(&opts.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

func runRuntimeServe(ctx context.Context, opts *runtimeServeOptions) error {
	if opts.DataDir == "" {
		return errors.New("--data-dir is required")
	}
	if opts.MaxApps < 0 {
		return fmt.Errorf("--max-apps %d must not be negative", opts.MaxApps)
	}
	if opts.MaxRestoreSize < 0 {
		return fmt.Errorf("--max-restore-size %d must be a positive number of bytes", opts.MaxRestoreSize)
	}
	if opts.MaxOpenDatabases < 0 {
		return fmt.Errorf("--max-open-databases %d must not be negative", opts.MaxOpenDatabases)
	}
	if opts.IdleTimeout < 0 {
		return fmt.Errorf("--idle-timeout %s must not be negative", opts.IdleTimeout)
	}
	for _, f := range []struct {
		name string
		bad  bool
	}{
		{"--max-running", opts.MaxRunning < 0},
		{"--queue-depth", opts.QueueDepth < 0},
		{"--queue-timeout", opts.QueueTimeout < 0},
		{"--read-timeout", opts.ReadTimeout < 0},
	} {
		if f.bad {
			return fmt.Errorf("%s must not be negative (0 means the default)", f.name)
		}
	}
	logger, err := newLogger(opts.IO.ErrOut, opts.LogFormat, opts.LogLevel)
	if err != nil {
		return err
	}

	return serveRuntime(ctx, opts, logger)
}
