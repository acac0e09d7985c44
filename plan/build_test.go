package plan

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// secretMarker is in every secret value the fixtures declare or observe; no renderer may ever print it.
const secretMarker = "s3cret"

type fixture struct {
	desired  Desired
	observed Snapshot
	options  Options
}

var (
	specHashRef = regexp.MustCompile(`"specHash":\s*"=([a-z0-9-]+)"`)
	// sha256Ref stands for a secret as a runtime reports it: a DSN's salted hash, a key's fingerprint.
	sha256Ref = regexp.MustCompile(`("dsn":\s*\{\s*)?"sha256":\s*"=([a-z0-9-]+):([^"]*)"`)
)

func loadFixture(t *testing.T, dir string) fixture {
	t.Helper()
	var f fixture
	readJSON(t, filepath.Join(dir, "desired.json"), &f.desired)
	envs := map[string]spec.Environment{}
	for _, e := range f.desired.Environments {
		envs[e.Metadata.Name] = e
	}
	raw, err := os.ReadFile(filepath.Join(dir, "observed.json"))
	require.NoError(t, err)
	raw = specHashRef.ReplaceAllFunc(raw, func(m []byte) []byte {
		name := specHashRef.FindSubmatch(m)[1]
		e, ok := envs[string(name)]
		require.True(t, ok, "specHash =%s names no declared environment", name)
		return []byte(`"specHash": "` + e.SpecHash() + `"`)
	})
	raw = sha256Ref.ReplaceAllFunc(raw, func(m []byte) []byte {
		sub := sha256Ref.FindSubmatch(m)
		app, value := string(sub[2]), string(sub[3])
		if len(sub[1]) > 0 {
			return []byte(string(sub[1]) + `"sha256": "` + spec.SecretHash(app, value) + `"`)
		}
		return []byte(`"sha256": "` + runtimeFingerprints(app, value)[spec.SecretHash(app, value)] + `"`)
	})
	require.NoError(t, json.Unmarshal(raw, &f.observed))
	// As the engine does, every reachable runtime fingerprints every declared key.
	fps := map[string]string{}
	for _, a := range f.desired.Apps {
		for _, k := range a.Spec.APIKeys {
			maps.Copy(fps, runtimeFingerprints(a.Metadata.Name, k.Value.Value))
		}
	}
	for n, st := range f.observed.Environments {
		if st.Reachable {
			st.KeyFingerprints = fps
			f.observed.Environments[n] = st
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "options.json")); err == nil {
		readJSON(t, filepath.Join(dir, "options.json"), &f.options)
	}
	return f
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), path)
}

func golden(t *testing.T, path string, got string) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./plan -update to create it")
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// TestBuildGolden plans every fixture pair under testdata/build and compares the text plan with its golden
// file. It also checks, for every case, that no renderer prints a secret and that Build is deterministic.
func TestBuildGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/build/*")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			f := loadFixture(t, dir)
			p, err := Build(f.desired, f.observed, f.options)
			var out strings.Builder
			if p != nil {
				out.WriteString(p.String())
			}
			if err != nil {
				out.WriteString("error: " + err.Error() + "\n")
			}
			golden(t, filepath.Join(dir, "plan.golden"), out.String())
			if p == nil {
				return
			}

			again, _ := Build(f.desired, f.observed, f.options)
			require.Empty(t, cmp.Diff(p, again), "Build is not deterministic")

			// Every action says why in a code, and the JSON plan's action_reason carries it.
			var js bytes.Buffer
			require.NoError(t, RenderJSON(&js, p))
			var tp tfjson.Plan
			require.NoError(t, json.Unmarshal(js.Bytes(), &tp))
			reasons := map[string]string{}
			for _, rc := range tp.ResourceChanges {
				reasons[rc.Address] = string(rc.ActionReason)
			}
			for _, a := range p.Actions {
				assert.NotEmpty(t, a.ReasonCode, "%s (%s) has no reason code", a.Address, a.Reason)
				if got, ok := reasons[string(a.Address)]; ok {
					assert.Equal(t, string(a.ReasonCode), got, "%s: action_reason", a.Address)
				}
			}

			// A declared key's salted hash can be checked against guesses offline: no output holds it.
			var keyHashes []string
			for _, a := range f.desired.Apps {
				for _, k := range a.Spec.APIKeys {
					keyHashes = append(keyHashes, spec.SecretHash(a.Metadata.Name, k.Value.Value))
				}
			}
			for name, render := range renderers() {
				var b bytes.Buffer
				require.NoError(t, render(&b, p), name)
				require.NotContains(t, b.String(), secretMarker, "%s output holds a secret", name)
				for _, h := range keyHashes {
					require.NotContains(t, b.String(), h, "%s output holds a key's salted hash", name)
				}
			}
			var saved bytes.Buffer
			require.NoError(t, Save(&saved, p))
			require.NotContains(t, saved.String(), secretMarker, "saved plan holds a secret")
			for _, h := range keyHashes {
				require.NotContains(t, saved.String(), h, "saved plan holds a key's salted hash")
			}
			if err != nil {
				require.ErrorIs(t, err, ErrBlocked)
			}
			checkOrder(t, p)
		})
	}
}

func renderers() map[string]func(*bytes.Buffer, *Plan) error {
	return map[string]func(*bytes.Buffer, *Plan) error{
		"text":     func(b *bytes.Buffer, p *Plan) error { return RenderText(b, p, TextOptions{}) },
		"color":    func(b *bytes.Buffer, p *Plan) error { return RenderText(b, p, TextOptions{Color: true}) },
		"markdown": func(b *bytes.Buffer, p *Plan) error { return RenderMarkdown(b, p) },
		"json":     func(b *bytes.Buffer, p *Plan) error { return RenderJSON(b, p) },
	}
}

// checkOrder asserts that every action's dependencies come before it and that addresses are unique.
func checkOrder(t *testing.T, p *Plan) {
	t.Helper()
	pos := map[Address]int{}
	for i, a := range p.Actions {
		_, dup := pos[a.Address]
		require.False(t, dup, "address %s twice", a.Address)
		pos[a.Address] = i
	}
	for i, a := range p.Actions {
		for _, d := range a.DependsOn {
			j, ok := pos[d]
			require.True(t, ok, "%s depends on %s, which is not in the plan", a.Address, d)
			require.Less(t, j, i, "%s depends on %s, which comes after it", a.Address, d)
		}
	}
}

// runtimeFingerprints is what a runtime's fingerprints endpoint answers for the keys of app with values:
// HMAC-SHA256 of each value's salted hash under a secret the test keeps.
func runtimeFingerprints(app string, values ...string) map[string]string {
	out := map[string]string{}
	for _, v := range values {
		h := spec.SecretHash(app, v)
		mac := hmac.New(sha256.New, []byte("the runtime's secret"))
		mac.Write([]byte(h))
		out[h] = hex.EncodeToString(mac.Sum(nil))
	}
	return out
}
