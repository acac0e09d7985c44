package apply

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/spec"
)

// moveApp carries app a.Name and its data from environment a.FromEnvironment (the source) to
// a.Environment (the target), in steps that are each safe to repeat:
//
//  1. stop the app in the source, so that the snapshot holds its last write;
//  2. back it up from the source into a temporary file;
//  3. write it to the target stopped and labelled spec.LabelMoveFrom=<source> (creating it, or
//     rewriting the copy an interrupted move left there);
//  4. restore the snapshot into the target;
//  5. delete the app in the source, which archives its data there;
//  6. switch: write the declared spec and labels (without LabelMoveFrom) to the target and wait until
//     it reaches its declared state.
//
// The rule that makes a re-run safe: data is only ever restored into a target labelled
// LabelMoveFrom=<source>. Such a copy was made by a move and has never served (it stays stopped until
// the switch), so a restore cannot lose anything written to it. The switch drops the label, and from
// then on the target is the app and is never restored over. The source is deleted only after a restore
// succeeded, so a target still labelled with no source left already holds the data and only needs the
// switch. What a run finds therefore tells how far an earlier one got:
//
//	source   target                  then
//	present  absent                  steps 1-6
//	present  labelled from source    steps 1-6 (step 3 rewrites the copy)
//	absent   labelled from source    step 6
//	absent   unlabelled              the move is done: only the declared state is reached
//	present  unlabelled              refused: the target is an app of its own and is not restored over
//	absent   absent                  refused: the app's data is in neither environment
func (f *FleetPerformer) moveApp(ctx context.Context, a plan.Action) error {
	from, to, name := a.FromEnvironment, a.Environment, a.Name
	if from == "" || from == to {
		return fmt.Errorf("move: no source environment to move from")
	}
	app, ok := f.Apps[name]
	if !ok {
		return fmt.Errorf("app %s is not declared", name)
	}
	if err := resolved(app); err != nil {
		return err
	}
	src, err := f.client(from)
	if err != nil {
		return err
	}
	dst, err := f.client(to)
	if err != nil {
		return err
	}
	srcApp, err := lookup(ctx, src, name)
	if err != nil {
		return fmt.Errorf("read app in %s: %w", from, err)
	}
	target, err := lookup(ctx, dst, name)
	if err != nil {
		return fmt.Errorf("read app in %s: %w", to, err)
	}
	ours := target != nil && target.Labels[spec.LabelMoveFrom] == from
	switch {
	case target != nil && !ours && srcApp == nil:
		return f.reach(ctx, dst, name, declaredState(app))
	case target != nil && !ours:
		return fmt.Errorf("app %s exists in both %s and %s, and the one in %s is not the target of a move from %s: "+
			"it is never restored over; plan again", name, from, to, to, from)
	case target == nil && srcApp == nil:
		return fmt.Errorf("app %s is found in neither %s nor %s: its data is not there to move; plan again", name, from, to)
	}

	if srcApp != nil {
		if err := f.copyData(ctx, src, dst, app, from, target); err != nil {
			return err
		}
		if err := f.deleteApp(ctx, from, name); err != nil {
			return err
		}
	}

	// The switch. Read the target again: steps 3 and 4 changed its generation.
	cur, err := dst.GetApp(ctx, name)
	if err != nil {
		return fmt.Errorf("read app in %s: %w", to, err)
	}
	if cur.Labels[spec.LabelMoveFrom] != from {
		return fmt.Errorf("app %s in %s changed during the move; plan again", name, to)
	}
	return f.putApp(ctx, dst, name, cur.Generation)
}

// copyData is steps 1 to 4 of moveApp: stop the source, back it up, write the stopped target labelled
// LabelMoveFrom=from (target is the labelled copy already there, or nil) and restore the snapshot into
// it. The snapshot is spooled to a temporary file, never held in memory.
func (f *FleetPerformer) copyData(ctx context.Context, src, dst *api.Client, app spec.App, from string, target *api.App) error {
	name, to := app.Metadata.Name, app.Spec.Environment
	if _, err := src.StopApp(ctx, name); err != nil {
		return fmt.Errorf("stop app in %s: %w", from, err)
	}
	tmp, err := os.CreateTemp("", "appfleet-move-"+name+"-*.db")
	if err != nil {
		return fmt.Errorf("spool snapshot: %w", err)
	}
	// Unlinked at once where the system allows it, so that the snapshot leaves no file behind even when
	// the process is killed mid-move; only the open handle reaches it.
	unlinked := os.Remove(tmp.Name()) == nil
	defer func() {
		_ = tmp.Close()
		if !unlinked {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := src.Backup(ctx, name, tmp); err != nil {
		return fmt.Errorf("back up app in %s: %w", from, err)
	}

	staged := app.Spec
	staged.State = spec.StateStopped
	labels := f.labels(app)
	labels[spec.LabelMoveFrom] = from
	opts := api.PutOptions{IfAbsent: true, AllowDataLoss: f.AllowDataLoss}
	if target != nil {
		opts = api.PutOptions{IfMatch: target.Generation, AllowDataLoss: f.AllowDataLoss}
	}
	if _, err := dst.PutApp(ctx, name, api.PutAppRequest{Spec: staged, Labels: labels}, opts); err != nil {
		if api.IsConflict(err) {
			return fmt.Errorf("create app in %s refused (it changed since it was read; plan again): %w", to, err)
		}
		return fmt.Errorf("create app in %s: %w", to, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool snapshot: %w", err)
	}
	if err := dst.RestoreWith(ctx, name, tmp, api.RestoreOptions{AllowDataLoss: f.AllowDataLoss}); err != nil {
		return fmt.Errorf("restore app in %s: %w", to, err)
	}
	return nil
}

// lookup reads an app, or returns nil when the runtime has none of that name.
func lookup(ctx context.Context, c *api.Client, name string) (*api.App, error) {
	app, err := c.GetApp(ctx, name)
	switch {
	case api.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &app, nil
}
