package apphost

import "testing"

// TestMaxOpenDatabasesLeavesRoomForClients: the bound on open databases keeps a reserve of descriptors
// for connections, at least fdReserve and an eighth of a large limit, so that waking apps up to the
// bound never starves the listener of descriptors.
func TestMaxOpenDatabasesLeavesRoomForClients(t *testing.T) {
	for _, tc := range []struct{ limit, want int }{
		{limit: 100, want: 16},         // below the reserve: the floor
		{limit: 512, want: 85},         // (512-256)/3
		{limit: 1024, want: 256},       // (1024-256)/3
		{limit: 20000, want: 5833},     // (20000-2500)/3
		{limit: 1 << 20, want: 305834}, // (1048576-131072)/3
	} {
		got := maxOpenDatabasesFor(tc.limit)
		if got != tc.want {
			t.Errorf("limit %d: bound %d, want %d", tc.limit, got, tc.want)
		}
		if spare := tc.limit - got*fdsPerDatabase; tc.limit > 2*fdReserve && spare < max(fdReserve, tc.limit/8) {
			t.Errorf("limit %d: only %d descriptors left for everything else", tc.limit, spare)
		}
	}
}
