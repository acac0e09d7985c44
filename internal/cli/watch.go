package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/appfleet/appfleet/gitops"
	"github.com/appfleet/appfleet/gitops/gitsync"
	"github.com/appfleet/appfleet/providers/all"
	"github.com/spf13/cobra"
)

type watchOptions struct {
	F                 *Factory
	Repo              string
	Branch            string
	Path              string
	Interval          time.Duration
	Listen            string
	WebhookSecretFile string
	SelfHeal          bool
	Prune             bool
	Notify            []string
	GitUsername       string
	GitTokenFile      string
	GitCAFile         string
	SSHKey            string
	SSHKnownHosts     []string
	SecretsDir        string
	ShutdownGrace     time.Duration
	LogFormat         string
	LogLevel          string
}

// gitTokenEnv holds the token (or password) for an https:// repository when no --git-token-file is given.
const gitTokenEnv = "APPFLEET_GIT_TOKEN"

func newWatchCmd(f *Factory) *cobra.Command {
	opts := &watchOptions{F: f}
	cmd := &cobra.Command{
		Use:   "watch --repo URL|PATH",
		Short: "Keep the fleet equal to what a git branch declares (the GitOps daemon)",
		Long: `Watch follows a branch of a git repository and applies every new commit's manifests, one commit at a
time, read from the commit itself (never from a work tree). A commit that does not validate is refused
and shown with its diagnostics, and the last good commit stays applied; a failed apply is retried with
backoff. Every runtime's event stream shows changes made around the manifests at once: each app's drift
policy (spec.drift: heal, notify or ignore; --self-heal makes heal the default) says what is done.

It serves, on --listen: POST /hooks/github, /hooks/gitlab and /hooks/gitea (push webhooks, checked
against --webhook-secret-file), /healthz, /readyz, /metrics, /api/status and a status page at /.

Credentials: an https:// repository takes a token (or password) from --git-token-file or the
environment variable APPFLEET_GIT_TOKEN, with --git-username; an ssh:// repository takes --ssh-key and
checks the server against --ssh-known-hosts (default ~/.ssh/known_hosts).`,
		Example: `  appfleet watch --repo https://github.com/acme/fleet.git --path prod --webhook-secret-file hook.secret
  appfleet watch --repo ./fleet-repo --interval 10s --self-heal --notify https://hooks.slack.com/services/...`,
		Annotations: map[string]string{annotationLongRunning: "true"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWatch(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Repo, "repo", "", "the git repository: https://, ssh://, file:// or a local path (required)")
	fl.StringVar(&opts.Branch, "branch", "main", "the branch to follow")
	fl.StringVar(&opts.Path, "path", "", "the manifests' directory inside the repository (default: all of it)")
	fl.DurationVar(&opts.Interval, "interval", time.Minute, "how often to fetch the branch (with jitter); also the pace of the full re-observe, at most once a minute")
	fl.StringVar(&opts.Listen, "listen", "127.0.0.1:7400", "address of the webhooks, status page, /api/status, health and metrics")
	fl.StringVar(&opts.WebhookSecretFile, "webhook-secret-file", "", "file holding the webhooks' secret; without it every webhook is refused")
	fl.BoolVar(&opts.SelfHeal, "self-heal", false, "put back apps changed around the manifests, unless their spec.drift (or the Fleet's) says otherwise")
	fl.BoolVar(&opts.Prune, "prune", false, "delete apps and environments this fleet owns but no longer declares")
	fl.StringArrayVar(&opts.Notify, "notify", nil, "post notifications (Slack-compatible JSON) to this `URL`; repeatable")
	fl.StringVar(&opts.GitUsername, "git-username", "", "user name for an https:// repository (default \"git\" with a token)")
	fl.StringVar(&opts.GitTokenFile, "git-token-file", "", "file holding the token or password for an https:// repository (else $"+gitTokenEnv+")")
	fl.StringVar(&opts.GitCAFile, "git-ca-file", "", "PEM file of the certificate authority of an https:// repository with a private CA")
	fl.StringVar(&opts.SSHKey, "ssh-key", "", "private key file for an ssh:// repository")
	fl.StringArrayVar(&opts.SSHKnownHosts, "ssh-known-hosts", nil, "known_hosts file for an ssh:// repository; repeatable (default ~/.ssh/known_hosts)")
	fl.StringVar(&opts.SecretsDir, "secrets-dir", "", "directory that relative fromFile secret references resolve against (default: the working directory)")
	fl.DurationVar(&opts.ShutdownGrace, "shutdown-grace", 2*time.Minute, "on SIGTERM, how long an apply in flight may take to finish")
	fl.StringVar(&opts.LogFormat, "log-format", "text", "log format on stderr: text or json")
	fl.StringVar(&opts.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func runWatch(ctx context.Context, opts *watchOptions) error {
	if opts.Repo == "" {
		return errors.New("--repo is required: the URL or path of the git repository to follow")
	}
	if opts.Interval < time.Second {
		return fmt.Errorf("--interval %s is too short; use 1s or more (a webhook fetches at once)", opts.Interval)
	}
	logger, err := newLogger(opts.F.IO.ErrOut, opts.LogFormat, opts.LogLevel)
	if err != nil {
		return err
	}
	for _, n := range opts.Notify {
		if u, err := url.Parse(n); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--notify %q: want an http:// or https:// URL", n)
		}
	}
	var secret []byte
	if opts.WebhookSecretFile != "" {
		if secret, err = readSecretFile(opts.WebhookSecretFile, "--webhook-secret-file"); err != nil {
			return err
		}
	} else {
		logger.Warn("no --webhook-secret-file: every webhook is refused; the branch is fetched every --interval")
	}
	token := os.Getenv(gitTokenEnv)
	if opts.GitTokenFile != "" {
		b, err := readSecretFile(opts.GitTokenFile, "--git-token-file")
		if err != nil {
			return err
		}
		token = string(b)
	}
	var caBundle []byte
	if opts.GitCAFile != "" {
		if caBundle, err = os.ReadFile(opts.GitCAFile); err != nil {
			return fmt.Errorf("--git-ca-file: %w", err)
		}
	}
	stateDir := cmp.Or(opts.F.StateDir, ".appfleet")
	d, err := gitops.New(gitops.Config{
		Git: gitsync.Options{
			URL: opts.Repo, Branch: opts.Branch, Username: opts.GitUsername, Password: token,
			CABundle: caBundle, SSHKeyFile: opts.SSHKey, SSHKnownHosts: opts.SSHKnownHosts,
		},
		Path:          filepath.ToSlash(opts.Path),
		Interval:      opts.Interval,
		StateDir:      stateDir,
		SecretsDir:    opts.SecretsDir,
		SelfHeal:      opts.SelfHeal,
		Prune:         opts.Prune,
		WebhookSecret: secret,
		Notify:        opts.Notify,
		Registry:      all.Registry(),
		ShutdownGrace: opts.ShutdownGrace,
		Logger:        logger,
	})
	if err != nil {
		return err
	}
	addr, stop, err := d.Serve(opts.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", opts.Listen, err)
	}
	defer stop()
	logger.Info("watching", "repo", gitsync.Redact(opts.Repo), "branch", opts.Branch, "path", cmp.Or(opts.Path, "."),
		"interval", opts.Interval, "status", "http://"+addr+"/")
	// The daemon stops when asked; an apply in flight finishes first. Being stopped is its normal end.
	return d.Run(ctx)
}

// readSecretFile reads a small secret file, dropping one trailing newline.
func readSecretFile(path, flag string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	b = []byte(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s %s is empty", flag, path)
	}
	return b, nil
}

// newLogger builds the slog logger of a long-running command: format text or json, level by name.
func newLogger(w interface{ Write([]byte) (int, error) }, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	hopts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use json or text", format)
}
