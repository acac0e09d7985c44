package fleet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvironmentName is the name of the i-th generated environment.
func EnvironmentName(i int) string { return fmt.Sprintf("env-%02d", i) }

// AppName is the name of the i-th generated app.
func AppName(i int) string { return fmt.Sprintf("app-%04d", i) }

// WriteManifests writes a fleet of apps spread round-robin over envs local environments into dir: one
// file holding every Environment and one file per App under apps/, the layout of a repository where
// each team owns its app's file. Each app has one or two small collections, labels and settings, so that
// the planner compares what a real app declares rather than an empty spec.
func WriteManifests(dir string, apps, envs int) error {
	if envs < 1 || apps < 0 {
		return fmt.Errorf("write manifests: need at least one environment, got %d", envs)
	}
	if err := os.MkdirAll(filepath.Join(dir, "apps"), 0o755); err != nil {
		return fmt.Errorf("write manifests: %w", err)
	}
	var b strings.Builder
	for i := range envs {
		if i > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, `apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata:
  name: %s
  labels: {tier: bench}
spec:
  provider: local
`, EnvironmentName(i))
	}
	if err := os.WriteFile(filepath.Join(dir, "environments.yaml"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write manifests: %w", err)
	}
	for i := range apps {
		path := filepath.Join(dir, "apps", AppName(i)+".yaml")
		if err := os.WriteFile(path, []byte(appManifest(i, envs)), 0o644); err != nil {
			return fmt.Errorf("write manifests: %w", err)
		}
	}
	return nil
}

// appManifest is the i-th app: every app has an orders collection, every other one a notes collection too.
func appManifest(i, envs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: appfleet.dev/v1alpha1
kind: App
metadata:
  name: %s
  labels: {team: team-%d}
spec:
  environment: %s
  settings: {currency: EUR, region: eu-%d}
  limits: {maxInFlight: 32}
  collections:
    - name: orders
      fields:
        - {name: customer, type: string, required: true}
        - {name: total, type: number}
        - {name: status, type: enum, values: [open, paid, shipped], default: open}
`, AppName(i), i%7, EnvironmentName(i%envs), i%3)
	if i%2 == 1 {
		b.WriteString(`    - name: notes
      fields:
        - {name: title, type: string, required: true}
        - {name: body, type: text}
        - {name: pinned, type: boolean, default: false}
`)
	}
	return b.String()
}

// WriteTerraform writes a root module of n terraform_data resources into dir, the Terraform counterpart
// of n apps: distinct resource blocks (not count), each with a small input, so that Terraform too plans n
// addressed objects with attributes to compare. terraform_data belongs to Terraform's builtin provider,
// which needs no download.
func WriteTerraform(dir string, n, envs int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write terraform module: %w", err)
	}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `resource "terraform_data" %q {
  input = {
    environment = %q
    team        = "team-%d"
    collections = %d
  }
}

`, strings.ReplaceAll(AppName(i), "-", "_"), EnvironmentName(i%envs), i%7, 1+i%2)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write terraform module: %w", err)
	}
	return nil
}
