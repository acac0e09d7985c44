package apphost

import (
	"context"
	"os"
	"time"

	"github.com/appfleet/appfleet/apphost/registry"
	"github.com/appfleet/appfleet/apphost/store"
	"github.com/appfleet/appfleet/spec"
)

// reconcilePending settles the migrations that were under way when the runtime last stopped (see
// putLocked): one whose transaction committed in the app's database (it recorded the generation) is
// recorded in the registry as the app's accepted spec; one that did not is forgotten. A database that
// cannot be asked now keeps its pending entry for the next start.
func (rt *Runtime) reconcilePending(ctx context.Context) error {
	pending, err := rt.reg.Pending(ctx)
	if err != nil {
		return err
	}
	for _, e := range pending {
		gen, err := rt.recordedGeneration(ctx, e)
		if err != nil {
			rt.log.Warn("cannot tell whether an interrupted migration committed; asking again at the next start",
				"app", e.Name, "generation", e.Generation, "error", err)
			continue
		}
		if gen == e.Generation {
			if err := rt.reg.Put(ctx, e); err != nil {
				return err
			}
			rt.log.Info("recovered a migration that committed before the runtime stopped", "app", e.Name, "generation", e.Generation)
			continue
		}
		if err := rt.reg.DropPending(ctx, e.Name); err != nil {
			return err
		}
		rt.log.Info("forgot a migration that never committed", "app", e.Name, "generation", e.Generation)
	}
	return nil
}

// recordedGeneration asks an app's database which generation it was last migrated for; 0 when it has
// no database.
func (rt *Runtime) recordedGeneration(ctx context.Context, e registry.Entry) (int64, error) {
	var c store.Conn
	var err error
	if driverOf(e.Spec) == spec.DriverPostgres {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err = store.OpenPostgres(pctx, pgTarget(e), false)
	} else {
		if _, serr := os.Stat(rt.appDBPath(e.Name)); os.IsNotExist(serr) {
			return 0, nil
		}
		c, err = store.OpenSQLite(rt.appDBPath(e.Name), store.OpenExisting)
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return store.RecordedGeneration(ctx, c)
}
