package store

import (
	"encoding/json"
	"runtime"
	"sync"
	"weak"

	"github.com/appfleet/appfleet/spec"
)

// Model is a compiled data model: an app's collections by name, ready for a dialect. It is never
// changed once made, so apps with the same collections share one (CompileShared).
type Model struct {
	Collections map[string]*Collection
}

type modelKey struct {
	dialect Dialect
	cols    string // the collections as JSON
}

// models are the models in use, so that a fleet of apps made from one template (an AppSet, say)
// holds one compiled model instead of one per app. An entry lasts as long as an app holds its model.
var models = struct {
	sync.Mutex
	m map[modelKey]weak.Pointer[Model]
}{m: map[modelKey]weak.Pointer[Model]{}}

// CompileShared is Compile for an app: it returns the model already compiled for the same
// collections and dialect while another app still holds it, and compiles a new one otherwise.
func CompileShared(d Dialect, cols []spec.Collection) *Model {
	b, err := json.Marshal(cols)
	if err != nil { // nothing to share it by; the model is the app's own
		return &Model{Collections: Compile(d, cols)}
	}
	k := modelKey{dialect: d, cols: string(b)}
	models.Lock()
	defer models.Unlock()
	if m := models.m[k].Value(); m != nil {
		return m
	}
	m := &Model{Collections: Compile(d, cols)}
	models.m[k] = weak.Make(m)
	runtime.AddCleanup(m, forgetModel, k)
	return m
}

// forgetModel drops the entry of a model no app holds any more, unless a new one took its place.
func forgetModel(k modelKey) {
	models.Lock()
	defer models.Unlock()
	if models.m[k].Value() == nil {
		delete(models.m, k)
	}
}
