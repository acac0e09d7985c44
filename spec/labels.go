package spec

// Labels the control plane keeps for itself, under ReservedLabelPrefix; manifests may not set them.
// They are defined here once: the planner, the executor and every provider read and write these.
const (
	// LabelFleet records which fleet owns an app or a runtime. The control plane sets it on every app it
	// puts and providers on everything they create; an undeclared app labelled with another fleet is never
	// pruned.
	LabelFleet = ReservedLabelPrefix + "fleet"
	// LabelEnvironment records which environment a provider's resource (container, volume) belongs to.
	LabelEnvironment = ReservedLabelPrefix + "environment"
	// LabelSpecHash records Environment.SpecHash of the spec a provider's resource was made from.
	LabelSpecHash = ReservedLabelPrefix + "spec-hash"
	// LabelMoveFrom marks an app that a move created in its target environment and has not switched to
	// yet; its value is the source environment. While it is set, the app there holds no data of its own
	// (it is kept stopped) and a move may restore over it; once the move switches to it, the label is
	// dropped and nothing is ever restored over that app again. The planner plans the move again for an
	// app that carries it, so that an interrupted move is finished by the next apply.
	LabelMoveFrom = ReservedLabelPrefix + "move-from"
	// LabelAppSet is the label every app an AppSet generates carries: the AppSet's name. It is set by
	// loading, never written in a manifest.
	LabelAppSet = ReservedLabelPrefix + "appset"
	// LabelCommit records the git commit whose apply last wrote an app (appfleet watch, and any apply
	// asked to record one). A new commit that does not change an app does not rewrite it, so each app
	// names the commit that last changed it; the planner, like for every reserved label, shows no drift
	// for it.
	LabelCommit = ReservedLabelPrefix + "commit"
)
