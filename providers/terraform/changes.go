package terraform

import (
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"

	"github.com/appfleet/appfleet/providers"
)

const (
	sensitiveText = "(sensitive)"
	unknownText   = "(known after apply)"
)

// actionReasons says Terraform's action_reason in words.
var actionReasons = map[tfjson.ActionReason]string{
	tfjson.ActionReasonReplaceBecauseTainted:         "tainted: an earlier apply failed part-way",
	tfjson.ActionReasonReplaceByRequest:              "replacement requested",
	tfjson.ActionReasonReplaceByTriggers:             "a replace trigger changed",
	tfjson.ActionReasonReplaceBecauseCannotUpdate:    "a changed attribute forces replacement",
	tfjson.ActionReasonDeleteBecauseNoResourceConfig: "no longer in the module",
	tfjson.ActionReasonDeleteBecauseWrongRepetition:  "its count or for_each changed",
	tfjson.ActionReasonDeleteBecauseCountIndex:       "beyond the new count",
	tfjson.ActionReasonDeleteBecauseEachKey:          "its for_each key is gone",
	tfjson.ActionReasonDeleteBecauseNoModule:         "its module call is gone",
	tfjson.ActionReasonDeleteBecauseNoMoveTarget:     "its moved target is gone",
	tfjson.ActionReasonReadBecauseConfigUnknown:      "its configuration is known only after apply",
	tfjson.ActionReasonReadBecauseDependencyPending:  "it depends on a pending change",
}

// ours reports whether a resource is the generated root module's bookkeeping (the token and the
// environment's record), which is never shown as a change of the user's infrastructure.
func ours(rc *tfjson.ResourceChange) bool {
	return rc.ModuleAddress == "" && rc.Type == "terraform_data" && (rc.Name == tokenResource || rc.Name == envResource)
}

// nestedChanges turns Terraform's pending changes and drift into the environment's nested changes, every
// sensitive value (by Terraform's marks, and the token wherever it appears) shown as "(sensitive)".
func nestedChanges(pl *tfjson.Plan, token string) []providers.ResourceChange {
	var out []providers.ResourceChange
	add := func(rcs []*tfjson.ResourceChange, drift bool) {
		for _, rc := range rcs {
			if rc == nil || rc.Change == nil || ours(rc) {
				continue
			}
			action := actionOf(rc.Change.Actions)
			if action == "" {
				continue
			}
			c := providers.ResourceChange{
				Address: rc.Address, Action: action, Drift: drift, Reason: actionReasons[rc.ActionReason],
				Mode: string(rc.Mode), Type: rc.Type, Name: rc.Name, ProviderName: rc.ProviderName,
				Before:          redact(rc.Change.Before, rc.Change.BeforeSensitive, token),
				After:           redact(rc.Change.After, rc.Change.AfterSensitive, token),
				AfterUnknown:    rc.Change.AfterUnknown,
				BeforeSensitive: rc.Change.BeforeSensitive,
				AfterSensitive:  rc.Change.AfterSensitive,
			}
			if drift {
				c.Reason = "changed outside Terraform"
			}
			if action == "update" || action == "replace" {
				c.Diffs = attrDiffs("", c.Before, c.After, rc.Change.AfterUnknown)
			}
			if action == "replace" {
				// A new object's computed attributes (its id, ...) are all known only after apply: what
				// matters is what changes in its configuration.
				c.Diffs = slices.DeleteFunc(c.Diffs, func(d providers.FieldDiff) bool { return d.After == unknownText })
			}
			out = append(out, c)
		}
	}
	add(pl.ResourceDrift, true)
	add(pl.ResourceChanges, false)
	sortChanges(out)
	return out
}

func sortChanges(cs []providers.ResourceChange) {
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].Drift != cs[j].Drift {
			return !cs[i].Drift
		}
		return cs[i].Address < cs[j].Address
	})
}

// actionOf names Terraform's change actions; "" for what changes nothing (no-op, read).
func actionOf(a tfjson.Actions) string {
	switch {
	case a.Create():
		return "create"
	case a.Update():
		return "update"
	case a.Delete():
		return "delete"
	case a.Replace():
		return "replace"
	default:
		return ""
	}
}

// redact returns v with every value that mask marks sensitive, and every string holding token, replaced
// by "(sensitive)". mask is Terraform's: true for a sensitive value, or a structure of the value's shape.
func redact(v, mask any, token string) any {
	if b, ok := mask.(bool); ok && b {
		return sensitiveText
	}
	switch x := v.(type) {
	case map[string]any:
		m, _ := mask.(map[string]any)
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = redact(e, m[k], token)
		}
		return out
	case []any:
		m, _ := mask.([]any)
		out := make([]any, len(x))
		for i, e := range x {
			var em any
			if i < len(m) {
				em = m[i]
			}
			out[i] = redact(e, em, token)
		}
		return out
	case string:
		if token != "" && strings.Contains(x, token) {
			return sensitiveText
		}
		return x
	default:
		return v
	}
}

// attrDiffs lists the attributes that differ between before and after, by dotted path, lists compared
// whole; an attribute known only after apply shows as such.
func attrDiffs(path string, before, after, unknown any) []providers.FieldDiff {
	if u, ok := unknown.(bool); ok && u {
		return []providers.FieldDiff{{Path: path, Kind: "change", Before: display(before), After: unknownText}}
	}
	bm, bok := before.(map[string]any)
	am, aok := after.(map[string]any)
	if bok && aok {
		um, _ := unknown.(map[string]any)
		keys := slices.Sorted(maps.Keys(bm))
		for k := range am {
			if _, ok := bm[k]; !ok {
				keys = append(keys, k)
			}
		}
		for k := range um {
			if _, ok := bm[k]; !ok {
				if _, ok := am[k]; !ok {
					keys = append(keys, k)
				}
			}
		}
		slices.Sort(keys)
		var out []providers.FieldDiff
		for _, k := range slices.Compact(keys) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out = append(out, attrDiffs(p, bm[k], am[k], um[k])...)
		}
		return out
	}
	b, a := display(before), display(after)
	if b == a {
		return nil
	}
	d := providers.FieldDiff{Path: path, Kind: "change", Before: b, After: a}
	switch {
	case before == nil:
		d.Kind, d.Before = "add", ""
	case after == nil:
		d.Kind, d.After = "remove", ""
	}
	d.Sensitive = b == sensitiveText || a == sensitiveText
	return []providers.FieldDiff{d}
}

// display is a value as the text plan shows it: JSON, a sensitive value as (sensitive).
func display(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if x == sensitiveText {
			return x
		}
		return truncate(strconv.Quote(x))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	s := string(b)
	if strings.Contains(s, `"`+sensitiveText+`"`) {
		s = strings.ReplaceAll(s, `"`+sensitiveText+`"`, sensitiveText)
	}
	return truncate(s)
}

// maxValue bounds a value shown in a plan; the JSON plan's before and after hold it whole.
const maxValue = 120

func truncate(s string) string {
	if len(s) <= maxValue {
		return s
	}
	return s[:maxValue] + "..."
}
