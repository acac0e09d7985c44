package spec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Manifests is everything one Load read: at most one Fleet, and the environments and apps, each sorted
// by name. Defaults are applied. Secret references carry no values until ResolveSecrets.
type Manifests struct {
	// Name is the fleet's name: the Fleet document's, else the base name of the first directory given,
	// made into a DNS label.
	Name string
	// Root is the absolute directory of the first path given (its directory when it is a file; the
	// working directory for stdin). State lives in Root/.appfleet unless --state-dir says otherwise.
	Root string
	// Fleet is nil when no Fleet document was given.
	Fleet        *Fleet
	Environments []Environment
	// Apps holds the written apps and those AppSets generate (labelled LabelAppSet), sorted by name.
	Apps []App
	// AppSets are the AppSet documents, sorted by name; the apps they generate are in Apps.
	AppSets []AppSet
	// Digest is the hex SHA-256 of every file read, its name relative to Root and its bytes, in load
	// order. A saved plan records it.
	Digest string

	dirs map[string]string // Source.File -> absolute directory, for relative fromFile references
}

// Environment returns the environment with that name.
func (m *Manifests) Environment(name string) (Environment, bool) {
	i := slices.IndexFunc(m.Environments, func(e Environment) bool { return e.Metadata.Name == name })
	if i < 0 {
		return Environment{}, false
	}
	return m.Environments[i], true
}

// App returns the app with that name.
func (m *Manifests) App(name string) (App, bool) {
	i := slices.IndexFunc(m.Apps, func(a App) bool { return a.Metadata.Name == name })
	if i < 0 {
		return App{}, false
	}
	return m.Apps[i], true
}

// AppsIn returns the apps declared in the environment, sorted by name.
func (m *Manifests) AppsIn(env string) []App {
	var out []App
	for _, a := range m.Apps {
		if a.Spec.Environment == env {
			out = append(out, a)
		}
	}
	return out
}

// AppSetNames names the declared AppSets, sorted.
func (m *Manifests) AppSetNames() []string {
	names := make([]string, len(m.AppSets))
	for i, s := range m.AppSets {
		names[i] = s.Metadata.Name
	}
	return names
}

// Parallelism is Fleet.spec.parallelism, or DefaultParallelism without a Fleet document.
func (m *Manifests) Parallelism() int {
	if m.Fleet != nil && m.Fleet.Spec.Parallelism > 0 {
		return m.Fleet.Spec.Parallelism
	}
	return DefaultParallelism
}

// Prune is Fleet.spec.prune: whether undeclared apps and environments of this fleet are deleted.
func (m *Manifests) Prune() bool { return m.Fleet != nil && m.Fleet.Spec.Prune }

// MaxSecretSize bounds a secret file.
const MaxSecretSize = 64 << 10

// ResolveSecrets returns a copy of the manifests whose secret references carry their Value, read from
// the environment variable or the file they name (a relative fromFile is relative to the directory of
// the manifest file that holds it; one trailing newline of a file is dropped). The copy shares
// everything but the secrets with m, which is not changed.
//
// Errors name the app, the key and the variable or file, never a value; every unresolvable reference
// is reported, joined into one error.
func (m *Manifests) ResolveSecrets() (*Manifests, error) {
	out := *m
	out.Apps = slices.Clone(m.Apps)
	out.Environments = slices.Clone(m.Environments)
	var errs []error
	for i := range out.Environments {
		e := &out.Environments[i]
		if e.Spec.Runtime.Token == nil {
			continue
		}
		tok := *e.Spec.Runtime.Token
		if err := tok.resolve(m.baseDir(e.Source.File), os.LookupEnv); err != nil {
			errs = append(errs, fmt.Errorf("environment %q: runtime.token: %w", e.Metadata.Name, err))
		}
		e.Spec.Runtime.Token = &tok
	}
	for i := range out.Apps {
		a := &out.Apps[i]
		name := a.Metadata.Name
		base := m.baseDir(a.Source.File)
		if a.Spec.Database.DSN != nil {
			dsn := *a.Spec.Database.DSN
			if err := dsn.resolve(base, os.LookupEnv); err != nil {
				errs = append(errs, fmt.Errorf("app %q: database.dsn: %w", name, err))
			}
			a.Spec.Database.DSN = &dsn
		}
		if a.Spec.APIKeys != nil {
			keys := slices.Clone(a.Spec.APIKeys)
			for j := range keys {
				if err := keys[j].Value.resolve(base, os.LookupEnv); err != nil {
					errs = append(errs, fmt.Errorf("app %q: apiKeys %q: %w", name, keys[j].Name, err))
				}
			}
			a.Spec.APIKeys = keys
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &out, nil
}

// baseDir is the absolute directory relative fromFile references of a manifest file are resolved against.
func (m *Manifests) baseDir(file string) string {
	if d, ok := m.dirs[file]; ok {
		return d
	}
	if file == "" || file == StdinName {
		d, _ := os.Getwd()
		return d
	}
	d, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return filepath.Dir(file)
	}
	return d
}

// Path returns the file a fromFile reference names, resolved against base when relative.
func (r SecretRef) Path(base string) string {
	if r.FromFile == "" || filepath.IsAbs(r.FromFile) {
		return r.FromFile
	}
	return filepath.Join(base, r.FromFile)
}

// resolve sets r.Value from its variable or file. Errors never hold the value.
func (r *SecretRef) resolve(base string, lookupEnv func(string) (string, bool)) error {
	switch {
	case r.FromEnv != "":
		v, ok := lookupEnv(r.FromEnv)
		if !ok {
			return fmt.Errorf("environment variable %s is not set", r.FromEnv)
		}
		if v == "" {
			return fmt.Errorf("environment variable %s is empty", r.FromEnv)
		}
		r.Value = v
	case r.FromFile != "":
		p := r.Path(base)
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("cannot read secret file %s: %w", r.FromFile, pathErr(err))
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, MaxSecretSize+1))
		if err != nil {
			return fmt.Errorf("cannot read secret file %s: %w", r.FromFile, pathErr(err))
		}
		if len(b) > MaxSecretSize {
			return fmt.Errorf("secret file %s is larger than %d KiB", r.FromFile, MaxSecretSize>>10)
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return fmt.Errorf("secret file %s is empty", r.FromFile)
		}
		r.Value = v
	default:
		if r.Value == "" {
			return errors.New("secret reference names neither fromEnv nor fromFile")
		}
	}
	return nil
}
