package plan

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, name := range []string{"create-all", "mixed", "secrets", "prune-on", "unreachable"} {
		t.Run(name, func(t *testing.T) {
			p := buildFixture(t, name)
			var b bytes.Buffer
			require.NoError(t, Save(&b, p))
			require.NotContains(t, b.String(), secretMarker)
			got, err := Load(&b)
			require.NoError(t, err)
			// Load keeps secret references and hashes, never values.
			if diff := cmp.Diff(p, got); diff != "" {
				t.Errorf("round trip differs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSaveKeepsSecretReferences(t *testing.T) {
	d := Desired{Fleet: "acme",
		Environments: []spec.Environment{{Metadata: spec.Metadata{Name: "dev"}, Spec: spec.EnvironmentSpec{Provider: "local"}}},
		Apps: []spec.App{{Metadata: spec.Metadata{Name: "crm"}, Spec: spec.AppSpec{Environment: "dev",
			APIKeys: []spec.APIKey{{Name: "k", Value: spec.SecretRef{FromEnv: "CRM_KEY", Value: "s3cret-value"}}}}}}}
	p, err := Build(d, Snapshot{}, Options{})
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, Save(&b, p))
	require.NotContains(t, b.String(), secretMarker)
	got, err := Load(&b)
	require.NoError(t, err)
	ref := got.Desired.Apps[0].Spec.APIKeys[0].Value
	assert.Equal(t, "CRM_KEY", ref.FromEnv)
	assert.Empty(t, ref.Value)
	assert.Empty(t, ref.SHA256, "no runtime fingerprinted the key: only its reference is kept")
	// The caller's Desired is left alone.
	assert.Equal(t, "s3cret-value", d.Apps[0].Spec.APIKeys[0].Value.Value)
}

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"not json", "hello", "not an appfleet saved plan"},
		{"other kind", `{"kind": "terraform", "formatVersion": 1}`, "not an appfleet saved plan"},
		{"other version", `{"kind": "appfleet-plan", "formatVersion": 99}`, "format version 99"},
		{"dangling dependency", `{"kind": "appfleet-plan", "formatVersion": 1, "fleet": "f", "options": {}, "desired": {"fleet": "f"},
			"actions": [{"address": "app.a", "kind": "create", "reason": "", "fingerprint": "absent", "dependsOn": ["environment.x"]}]}`, "not in the plan"},
		{"unknown kind", `{"kind": "appfleet-plan", "formatVersion": 1, "actions": [{"address": "app.a", "kind": "explode"}]}`, "explode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tt.input))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// digest matches the spec digest in an app's fingerprint.
var digest = regexp.MustCompile(`digest:[0-9a-f]{16}`)

func TestStale(t *testing.T) {
	f := loadFixture(t, "testdata/build/mixed")
	p, err := Build(f.desired, f.observed, f.options)
	require.NoError(t, err)
	require.Empty(t, Stale(p, f.observed), "a plan is not stale against what it observed")
	// What a saved plan is compared with is what was saved, not what Build returned.
	var buf bytes.Buffer
	require.NoError(t, Save(&buf, p))
	saved, err := Load(&buf)
	require.NoError(t, err)
	require.Empty(t, Stale(saved, f.observed), "a saved plan is not stale against what it observed")

	app := func(s *Snapshot, name string) *api.App {
		env := s.Environments["dev"]
		for i := range env.Apps {
			if env.Apps[i].Name == name {
				return &env.Apps[i]
			}
		}
		t.Fatalf("no app %s", name)
		return nil
	}
	tests := []struct {
		name   string
		change func(s *Snapshot)
		want   []string
	}{
		{"app updated elsewhere", func(s *Snapshot) {
			a := app(s, "shop")
			a.Generation = 4
			a.Spec.Settings = map[string]string{"currency": "GBP"}
		}, []string{"app.shop changed since the plan was made: generation 3 -> 4, spec.settings"}},
		{"app stopped out of band: the generation stays, the plan is stale", func(s *Snapshot) {
			a := app(s, "shop")
			a.Status, a.Spec.State = api.StatusStopped, spec.StateStopped
		}, []string{"app.shop changed since the plan was made: state running -> stopped"}},
		{"app in error since", func(s *Snapshot) { app(s, "legacy").Status = api.StatusError },
			[]string{"app.legacy changed since the plan was made: state running -> error"}},
		{"labels changed out of band", func(s *Snapshot) { app(s, "legacy").Labels["team"] = "x" },
			[]string{"app.legacy changed since the plan was made: labels"}},
		{"settings changed out of band", func(s *Snapshot) { app(s, "shop").Spec.Settings["currency"] = "GBP" },
			[]string{"app.shop changed since the plan was made: spec.settings"}},
		{"a key changed out of band", func(s *Snapshot) {
			app(s, "shop").Spec.APIKeys = []spec.APIKey{{Name: "web", Value: spec.SecretRef{SHA256: spec.SecretHash("shop", "k")}}}
		}, []string{"app.shop changed since the plan was made: spec.apiKeys"}},
		{"starting again is not a change", func(s *Snapshot) { app(s, "shop").Status = api.StatusStarting }, nil},
		{"app created elsewhere", func(s *Snapshot) {
			env := s.Environments["dev"]
			env.Apps = append(env.Apps, api.App{Name: "crm", Generation: 1, Status: api.StatusRunning})
			s.Environments["dev"] = env
		}, []string{"app.crm changed since the plan was made (planned against absent, now generation:1,state:running,digest:X)"}},
		{"app deleted elsewhere", func(s *Snapshot) {
			env := s.Environments["dev"]
			env.Apps = env.Apps[:1]
			s.Environments["dev"] = env
		}, []string{"app.legacy changed since the plan was made (planned against generation:7,state:running,digest:X, now absent)"}},
		{"environment unreachable", func(s *Snapshot) {
			env := s.Environments["dev"]
			env.Reachable = false
			s.Environments["dev"] = env
		}, []string{
			"app.crm changed since the plan was made (planned against absent, now unknown)",
			"app.legacy changed since the plan was made (planned against generation:7,state:running,digest:X, now unknown)",
			"app.shop changed since the plan was made (planned against generation:3,state:running,digest:X, now unknown)",
		}},
		{"no-op environment stopped since", func(s *Snapshot) {
			env := s.Environments["dev"]
			env.Running, env.Reachable = false, false
			s.Environments["dev"] = env
		}, []string{
			"environment.dev changed since the plan was made: runtime running -> stopped",
			"app.crm changed since the plan was made (planned against absent, now unknown)",
			"app.legacy changed since the plan was made (planned against generation:7,state:running,digest:X, now unknown)",
			"app.shop changed since the plan was made (planned against generation:3,state:running,digest:X, now unknown)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh := loadFixture(t, "testdata/build/mixed").observed
			tt.change(&fresh)
			var got []string
			for _, s := range Stale(saved, fresh) {
				// The digest's value is not the point here; that it is there is.
				got = append(got, digest.ReplaceAllString(s.String(), "digest:X"))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Stale (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStaleKeyRotated: a key rotated out of band changes no generation, label or setting, and the
// fingerprint (shown in the JSON plan) holds nothing derived from a secret; the saved plan still sees it.
func TestStaleKeyRotated(t *testing.T) {
	withKey := func(value string) Snapshot {
		s := loadFixture(t, "testdata/build/mixed").observed
		env := s.Environments["dev"]
		env.Apps[0].Spec.APIKeys = []spec.APIKey{{Name: "web", Value: spec.SecretRef{SHA256: spec.SecretHash("shop", value)}}}
		return s
	}
	f := loadFixture(t, "testdata/build/mixed")
	p, err := Build(f.desired, withKey("one"), f.options)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, Save(&buf, p))
	saved, err := Load(&buf)
	require.NoError(t, err)
	require.Empty(t, Stale(saved, withKey("one")))

	stale := Stale(saved, withKey("two"))
	require.Len(t, stale, 1)
	assert.Equal(t, "app.shop changed since the plan was made: spec.apiKeys", stale[0].String())
	assert.Equal(t, stale[0].Planned, stale[0].Observed, "the fingerprint leaves secrets out")
}

func TestBuildRefuses(t *testing.T) {
	dev := spec.Environment{Metadata: spec.Metadata{Name: "dev"}, Spec: spec.EnvironmentSpec{Provider: "local"}}
	app := func(name, env string) spec.App {
		return spec.App{Metadata: spec.Metadata{Name: name}, Spec: spec.AppSpec{Environment: env}}
	}
	tests := []struct {
		name string
		d    Desired
		o    Options
		want string
	}{
		{"undeclared environment", Desired{Environments: []spec.Environment{dev}, Apps: []spec.App{app("crm", "prod")}}, Options{},
			`app "crm": environment "prod" is not declared`},
		{"app twice", Desired{Environments: []spec.Environment{dev}, Apps: []spec.App{app("crm", "dev"), app("crm", "dev")}}, Options{},
			`app "crm" is declared twice`},
		{"bad target", Desired{Environments: []spec.Environment{dev}}, Options{Targets: []string{"db.x"}},
			`want environment.<name> or app.<name>`},
		{"target names nothing", Desired{Environments: []spec.Environment{dev}}, Options{Targets: []string{"app.nope"}},
			`target "app.nope" names nothing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Build(tt.d, Snapshot{}, tt.o)
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestBuildDependencies(t *testing.T) {
	tests := []struct {
		fixture string
		want    map[Address][]Address
	}{
		{"create-all", map[Address][]Address{
			"environment.dev": nil, "app.crm": {"environment.dev"}, "app.wiki": {"environment.dev"}}},
		{"prune-on", map[Address][]Address{
			"environment.dev": nil, "app.crm": {"environment.dev"}, "app.legacy": {"environment.dev"},
			"app.theirs": {"environment.dev"}, "app.blog": nil, "environment.old": {"app.blog"}}},
		{"destroy", map[Address][]Address{
			"environment.old": nil, "app.crm": nil, "app.stray": nil, "environment.dev": {"app.crm", "app.stray"}}},
		{"move", map[Address][]Address{
			"environment.dev": nil, "environment.prod": nil, "app.crm": {"environment.dev", "environment.prod"}}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			p := buildFixture(t, tt.fixture)
			got := map[Address][]Address{}
			for _, a := range p.Actions {
				got[a.Address] = a.DependsOn
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DependsOn (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBuildInputOrder checks that the order of declarations and observations does not change the plan.
func TestBuildInputOrder(t *testing.T) {
	for _, name := range []string{"mixed", "prune-on", "start-stop", "destroy"} {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, "testdata/build/"+name)
			want, _ := Build(f.desired, f.observed, f.options)
			slices.Reverse(f.desired.Apps)
			slices.Reverse(f.desired.Environments)
			for k, env := range f.observed.Environments {
				slices.Reverse(env.Apps)
				f.observed.Environments[k] = env
			}
			got, _ := Build(f.desired, f.observed, f.options)
			got.Desired, want.Desired = Desired{}, Desired{}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("plan depends on input order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildDestroyTargets(t *testing.T) {
	f := loadFixture(t, "testdata/build/destroy")
	f.options.Targets = []string{"environment.dev"}
	p, err := Build(f.desired, f.observed, f.options)
	require.NoError(t, err)
	var addrs []Address
	for _, a := range p.Actions {
		addrs = append(addrs, a.Address)
	}
	assert.Equal(t, []Address{"app.crm", "app.stray", "environment.dev"}, addrs, "a targeted environment's delete pulls in its apps' deletes")

	f.options.Targets = []string{"app.crm"}
	p, err = Build(f.desired, f.observed, f.options)
	require.NoError(t, err)
	require.Len(t, p.Actions, 1)
	assert.Equal(t, Delete, p.Actions[0].Kind)
}

func TestBuildNeverPanicsOnPartialSnapshots(t *testing.T) {
	d := loadFixture(t, "testdata/build/create-all").desired
	snaps := []Snapshot{
		{},
		{Environments: map[string]EnvironmentState{"dev": {}}},
		{Environments: map[string]EnvironmentState{"dev": {Exists: true}}},
		{Environments: map[string]EnvironmentState{"dev": {Exists: true, Running: true, Reachable: true, Apps: []api.App{{}}}}},
		{Environments: map[string]EnvironmentState{"x": {Exists: true, Reachable: true, Apps: []api.App{{Name: "crm"}, {Name: "crm"}}}}},
	}
	for _, s := range snaps {
		for _, o := range []Options{{}, {Prune: true}, {Destroy: true}, {Destroy: true, Prune: true}} {
			p, err := Build(d, s, o)
			if err == nil {
				require.NotNil(t, p)
				checkOrder(t, p)
				_ = p.String()
			}
		}
	}
}

// A saved plan shows secrets only as hashes; apply resolves them again, so a secret whose value changed
// since must be caught, even though the manifests (and their digest) did not change.
func TestSecretsChanged(t *testing.T) {
	app := func(dsn string, keys ...string) spec.App {
		a := spec.App{Metadata: spec.Metadata{Name: "crm"}, Spec: spec.AppSpec{Environment: "dev"}}
		if dsn != "" {
			a.Spec.Database.DSN = &spec.SecretRef{FromEnv: "DSN", Value: dsn}
		}
		for i := 0; i+1 < len(keys); i += 2 {
			a.Spec.APIKeys = append(a.Spec.APIKeys, spec.APIKey{Name: keys[i], Value: spec.SecretRef{FromEnv: "K", Value: keys[i+1]}})
		}
		return a
	}
	desired := func(apps ...spec.App) Desired {
		return Desired{Fleet: "acme", Apps: apps,
			Environments: []spec.Environment{{Metadata: spec.Metadata{Name: "dev"}, Spec: spec.EnvironmentSpec{Provider: "local"}}}}
	}
	tests := []struct {
		name      string
		then, now spec.App
		want      []string
	}{
		{"same", app("pg-s3cret", "web", "s3cret-1"), app("pg-s3cret", "web", "s3cret-1"), nil},
		{"key changed", app("", "web", "s3cret-1", "cli", "s3cret-2"), app("", "web", "s3cret-1", "cli", "s3cret-3"), []string{"app.crm: apiKeys.cli"}},
		{"dsn changed", app("pg-s3cret-a"), app("pg-s3cret-b"), []string{"app.crm: database.dsn"}},
		{"key added", app(""), app("", "web", "s3cret-1"), []string{"app.crm: apiKeys.web"}},
		{"key removed", app("", "web", "s3cret-1"), app(""), []string{"app.crm: apiKeys.web"}},
	}
	// The runtime of dev fingerprints every value either side declares.
	snap := Snapshot{Environments: map[string]EnvironmentState{"dev": {Name: "dev", Provider: "local", Exists: true, Running: true, Reachable: true,
		KeyFingerprints: runtimeFingerprints("crm", "s3cret-1", "s3cret-2", "s3cret-3")}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Build(desired(tt.then), snap, Options{})
			require.NoError(t, err)
			var b bytes.Buffer
			require.NoError(t, Save(&b, p))
			for _, v := range []string{"s3cret-1", "s3cret-2", "s3cret-3"} {
				assert.NotContains(t, b.String(), spec.SecretHash("crm", v), "a saved plan holds no key's salted hash")
			}
			saved, err := Load(&b)
			require.NoError(t, err)
			got := SecretsChanged(saved, desired(tt.now), snap)
			assert.Equal(t, tt.want, got)
			assert.NotContains(t, strings.Join(got, " "), secretMarker)
		})
	}
}

// A key rotated while its environment does not exist yet cannot be told from a saved plan: nothing but
// the key's reference is stored, since no runtime could fingerprint it.
func TestSecretsChangedUnknownRuntime(t *testing.T) {
	app := func(key string) spec.App {
		return spec.App{Metadata: spec.Metadata{Name: "crm"}, Spec: spec.AppSpec{Environment: "dev",
			APIKeys: []spec.APIKey{{Name: "web", Value: spec.SecretRef{FromEnv: "K", Value: key}}}}}
	}
	desired := func(a spec.App) Desired {
		return Desired{Fleet: "acme", Apps: []spec.App{a},
			Environments: []spec.Environment{{Metadata: spec.Metadata{Name: "dev"}, Spec: spec.EnvironmentSpec{Provider: "local"}}}}
	}
	p, err := Build(desired(app("s3cret-1")), Snapshot{}, Options{})
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, Save(&b, p))
	assert.NotContains(t, b.String(), spec.SecretHash("crm", "s3cret-1"))
	assert.NotContains(t, b.String(), "sha256")
	saved, err := Load(&b)
	require.NoError(t, err)
	assert.Empty(t, SecretsChanged(saved, desired(app("s3cret-2")), Snapshot{}))
	assert.Equal(t, []string{"app.crm: apiKeys.web"}, SecretsChanged(saved, desired(spec.App{Metadata: spec.Metadata{Name: "crm"}, Spec: spec.AppSpec{Environment: "dev"}}), Snapshot{}))
}
