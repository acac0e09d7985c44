package engine

import (
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
)

// Every field a provider reports of its own changes reaches the plan: the two types are kept apart (the
// providers never import the planner) and a field added to one must be carried over here.
func TestNestedChangesCarryEveryField(t *testing.T) {
	in := providers.ResourceChange{
		Address: "module.runtime.terraform_data.server", Action: "replace", Drift: true, Reason: "the runtime does not answer",
		Mode: "managed", Type: "terraform_data", Name: "server", ProviderName: "terraform.io/builtin/terraform",
		Diffs:  []providers.FieldDiff{{Path: "input.size", Kind: "change", Before: "small", After: "large", Sensitive: true}},
		Before: map[string]any{"a": 1}, After: map[string]any{"a": 2}, AfterUnknown: map[string]any{"id": true},
		BeforeSensitive: map[string]any{"t": true}, AfterSensitive: map[string]any{"t": true},
	}
	got := nestedChanges([]providers.ResourceChange{in})
	want := []plan.NestedChange{{
		Address: in.Address, Action: in.Action, Drift: true, Reason: in.Reason,
		Mode: in.Mode, Type: in.Type, Name: in.Name, ProviderName: in.ProviderName,
		Diffs:  []plan.FieldDiff{{Path: "input.size", Kind: plan.FieldChange, Before: "small", After: "large", Sensitive: true}},
		Before: in.Before, After: in.After, AfterUnknown: in.AfterUnknown,
		BeforeSensitive: in.BeforeSensitive, AfterSensitive: in.AfterSensitive,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nested changes (-want +got):\n%s", diff)
	}
	for _, v := range []reflect.Value{reflect.ValueOf(got[0]), reflect.ValueOf(got[0].Diffs[0])} {
		for i := range v.NumField() {
			// DataLoss is the planner's own judgement of an app's field, never a provider's.
			if v.Field(i).IsZero() && v.Type().Field(i).Name != "DataLoss" {
				t.Errorf("%s.%s is not carried over from the provider's change", v.Type(), v.Type().Field(i).Name)
			}
		}
	}
	if nestedChanges(nil) != nil {
		t.Error("no changes make no nested changes")
	}
}
