package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/appfleet/appfleet/apply"
	"github.com/appfleet/appfleet/plan"
)

// Sentinel errors; test with errors.Is. Other errors the engine passes on: *spec.InvalidError (manifests
// that do not validate), *lock.LockedError (another process changes the fleet), *plan.BlockedError.
var (
	// ErrInterrupted: the context ended. What was in flight finished; nothing more was started.
	ErrInterrupted = errors.New("interrupted")
	// ErrPartial: the run ended, but the fleet does not match the manifests (*FailedError,
	// *UnconvergedError).
	ErrPartial = errors.New("some actions failed")
	// ErrNoPaths: a saved plan names no manifests to load again.
	ErrNoPaths = errors.New("the saved plan names no manifests")
)

// FailedError is what Apply returns when a pass's actions did not all succeed or it was interrupted;
// every action's outcome was reported to the sink. It matches ErrInterrupted when the context ended,
// else ErrPartial.
type FailedError struct {
	Pass   Pass
	Result apply.Result
}

func (e *FailedError) Error() string {
	if e.Result.Interrupted {
		return "interrupted: the actions in flight finished and no more were started"
	}
	return fmt.Sprintf("%s did not succeed", strings.Join(append(e.Result.Failed, e.Result.Skipped...), ", "))
}

// Is makes errors.Is match ErrInterrupted or ErrPartial.
func (e *FailedError) Is(target error) bool {
	if e.Result.Interrupted {
		return target == ErrInterrupted
	}
	return target == ErrPartial
}

// UnconvergedError is what Apply returns when, after every pass, apps remain that could not be planned:
// their runtime, or one that may hold them, does not answer. It matches ErrPartial.
type UnconvergedError struct {
	Addresses []plan.Address
}

func (e *UnconvergedError) Error() string {
	return fmt.Sprintf("not converged: %s could not be planned", joinAddresses(e.Addresses))
}

// Is makes errors.Is(err, ErrPartial) true.
func (e *UnconvergedError) Is(target error) bool { return target == ErrPartial }

// DataLossError is what Apply returns, before changing anything in that pass, for a plan whose actions
// lose data when the request does not allow it.
type DataLossError struct {
	Pass      Pass
	Addresses []plan.Address
}

func (e *DataLossError) Error() string {
	return fmt.Sprintf("the plan loses data in %s; it was not carried out", joinAddresses(e.Addresses))
}

// Staleness says what made a saved plan stale.
type Staleness int

// What can make a saved plan stale.
const (
	// StaleManifests: the manifests' digest differs from the one the plan recorded.
	StaleManifests Staleness = iota + 1
	// StaleSecrets: secret values changed (Secrets names them).
	StaleSecrets
	// StaleResources: resources changed since the plan observed them (Resources names them).
	StaleResources
	// StaleUnplaced: the plan does not say where App, which declares a placement, goes.
	StaleUnplaced
)

// StaleError is what Apply returns for a saved plan that no longer holds; nothing was changed.
type StaleError struct {
	What      Staleness
	Secrets   []string
	Resources []plan.StaleResource
	App       string
}

func (e *StaleError) Error() string {
	switch e.What {
	case StaleManifests:
		return "the manifests changed since the plan was saved"
	case StaleUnplaced:
		return fmt.Sprintf("the saved plan does not say where app %s goes", e.App)
	case StaleSecrets:
		return fmt.Sprintf("secrets changed since the plan was saved (%s)", strings.Join(e.Secrets, ", "))
	default:
		items := make([]string, len(e.Resources))
		for i, r := range e.Resources {
			items[i] = r.String()
		}
		return "the saved plan is stale: " + strings.Join(items, "; ")
	}
}

// joinAddresses lists addresses for a message: "app.a, app.b".
func joinAddresses(as []plan.Address) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
