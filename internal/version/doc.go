// Package version tells which build of appfleet is running. Version is set at link time
// (-ldflags "-X github.com/appfleet/appfleet/internal/version.Version=v1.2.3"); the commit comes from
// the build info Go records.
package version
