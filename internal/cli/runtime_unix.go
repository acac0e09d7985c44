//go:build unix

package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/appfleet/appfleet/apphost"
	"github.com/appfleet/appfleet/internal/version"
)

// defaultMaxRestoreSize is --max-restore-size's default.
const defaultMaxRestoreSize = apphost.DefaultMaxRestoreBytes

// serveRuntime runs the runtime until ctx ends; its options are checked.
func serveRuntime(ctx context.Context, opts *runtimeServeOptions, logger *slog.Logger) error {
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	tokenFile := opts.TokenFile
	if tokenFile == "" {
		tokenFile = filepath.Join(opts.DataDir, "token")
	}
	token, err := apphost.LoadOrCreateToken(tokenFile)
	if err != nil {
		return err
	}
	if n, err := apphost.RaiseOpenFileLimit(); err != nil {
		logger.Warn("could not raise the open-file limit", "error", err)
	} else {
		logger.Info("open-file limit", "limit", n)
	}
	if apphost.TestHooksBuilt {
		logger.Warn("this binary was built with test hooks (tag appfleet_testhooks); never run it in production")
	}

	rt, err := apphost.New(ctx, apphost.Config{
		DataDir:          opts.DataDir,
		Name:             opts.Name,
		Token:            token,
		IdleTimeout:      opts.IdleTimeout,
		MaxApps:          opts.MaxApps,
		MaxOpenDatabases: opts.MaxOpenDatabases,
		ShutdownTimeout:  opts.ShutdownTimeout,
		MaxRunning:       opts.MaxRunning,
		QueueDepth:       opts.QueueDepth,
		QueueTimeout:     opts.QueueTimeout,
		ReadTimeout:      opts.ReadTimeout,
		MaxRestoreBytes:  opts.MaxRestoreSize,
		NoKeptAnswers:    !opts.KeepAnswers,
		Version:          version.Get().Version,
		Logger:           logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		_ = rt.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("listen on %s: %w; choose another address with --listen", opts.Listen, err)
	}
	addr := ln.Addr().String()
	if err := apphost.WriteFileAtomic(filepath.Join(opts.DataDir, "runtime.addr"), []byte(addr+"\n"), 0o600); err != nil {
		// A full disk must not keep a runtime from serving reads; the lock file records the address too.
		logger.Warn("could not write runtime.addr; the address is in runtime.lock", "error", err)
	}
	fmt.Fprintf(opts.IO.ErrOut, "appfleet runtime listening on %s\n", addr)
	logger.Info("listening", "addr", addr)
	if err := rt.Serve(ctx, ln); err != nil && !strings.Contains(err.Error(), "use of closed network connection") {
		return err
	}
	logger.Info("stopped")
	return nil
}
