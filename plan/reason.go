package plan

// ReasonCode says, for programs, why an action is planned; Action.Reason says it for people. Codes are
// Terraform's action_reason values where one fits (replace_because_cannot_update,
// delete_because_no_resource_config, read_because_dependency_pending) and appfleet's own in the same
// shape elsewhere, so that the JSON plan's action_reason is filled for every action. Like Reason, a code
// is for display and policy checks; it never drives apply.
type ReasonCode string

// The reason codes.
const (
	// ReasonAbsent: the resource is declared and does not exist.
	ReasonAbsent ReasonCode = "create_because_absent"
	// ReasonUpToDate: what runs matches the declaration.
	ReasonUpToDate ReasonCode = "no_op_because_up_to_date"
	// ReasonNotDeclared: the resource runs, is not declared, and is kept (no prune, or not this fleet's).
	ReasonNotDeclared ReasonCode = "no_op_because_not_declared"
	// ReasonCannotUpdate: the change cannot be made in place (an app's database, a field's type, an
	// environment's provider), so the resource is replaced.
	ReasonCannotUpdate ReasonCode = "replace_because_cannot_update"
	// ReasonSettingsChanged: an environment's runtime settings changed.
	ReasonSettingsChanged ReasonCode = "update_because_settings_changed"
	// ReasonNotRunning: an environment's runtime exists but does not run.
	ReasonNotRunning ReasonCode = "update_because_not_running"
	// ReasonNotReachable: an environment's runtime runs but its management API does not answer.
	ReasonNotReachable ReasonCode = "update_because_not_reachable"
	// ReasonProviderChanges: the environment's provider plans changes of its own (Terraform).
	ReasonProviderChanges ReasonCode = "update_because_provider_plans_changes"
	// ReasonSpecChanged: an app's declared spec or labels differ from what runs; changed in place.
	ReasonSpecChanged ReasonCode = "update_because_spec_changed"
	// ReasonStateChanged: only the app's running state differs (start or stop).
	ReasonStateChanged ReasonCode = "update_because_state_changed"
	// ReasonInError: the app is in error and is started again.
	ReasonInError ReasonCode = "update_because_in_error"
	// ReasonEnvironmentChanged: the app's environment changed; it moves there with its data.
	ReasonEnvironmentChanged ReasonCode = "update_because_environment_changed"
	// ReasonMoveUnfinished: a move of the app was interrupted; it is finished.
	ReasonMoveUnfinished ReasonCode = "update_because_move_unfinished"
	// ReasonDestroy: destroy deletes everything declared.
	ReasonDestroy ReasonCode = "delete_because_destroy"
	// ReasonNoResourceConfig: the resource is no longer declared and is pruned.
	ReasonNoResourceConfig ReasonCode = "delete_because_no_resource_config"
	// ReasonNoLongerGenerated: the AppSet that generated the app no longer does.
	ReasonNoLongerGenerated ReasonCode = "delete_because_no_longer_generated"
	// ReasonEnvironmentDeleted: the app's environment is deleted, and the app with it.
	ReasonEnvironmentDeleted ReasonCode = "delete_because_environment_deleted"
	// ReasonDependencyPending: the app could not be observed because a runtime did not answer; it is
	// read again once that runtime answers.
	ReasonDependencyPending ReasonCode = "read_because_dependency_pending"
)

// decide sets the action's kind and why: the code for programs, the text for people.
func (a *Action) decide(k ActionKind, code ReasonCode, text string) {
	a.Kind, a.ReasonCode, a.Reason = k, code, text
}
