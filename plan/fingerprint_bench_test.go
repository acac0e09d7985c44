package plan

import (
	"fmt"
	"testing"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
)

// BenchmarkAppFingerprint is what Build pays per observed app for a fingerprint that sees a start or
// stop, labels, settings and the rest of the spec (an app of 3 collections of 5 fields).
func BenchmarkAppFingerprint(b *testing.B) {
	a := &api.App{Name: "app-1", Generation: 3, Status: api.StatusRunning, Labels: map[string]string{spec.LabelFleet: "acme"},
		Spec: spec.AppSpec{Environment: "dev", Settings: map[string]string{"a": "b"}}}
	for i := range 3 {
		c := spec.Collection{Name: fmt.Sprintf("c%d", i)}
		for j := range 5 {
			c.Fields = append(c.Fields, spec.Field{Name: fmt.Sprintf("f%d", j), Type: "string"})
		}
		a.Spec.Collections = append(a.Spec.Collections, c)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = appFingerprint(a)
	}
}
