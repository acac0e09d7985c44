package store

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"modernc.org/libc"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
	"modernc.org/sqlite/pcache"
)

// Page cache and lookaside sizes. An app's database is small and mostly served from the OS page cache,
// so a big per-connection cache buys little and costs RAM a thousand times over. No lookaside: its
// slots cost 6 kB in every open app (measured with 16 of 512 bytes), and a page of 20 records or a
// lookup by id took no longer without it (BenchmarkDataPath).
const (
	cacheSizeKiB    = 256 // PRAGMA cache_size, per connection
	lookasideSlot   = 0   // bytes per lookaside slot
	lookasideSlots  = 0   // lookaside slots per connection (SQLite's default 1200x40 would cost 48 KiB each)
	busyTimeoutMsec = 5000
)

var configureOnce sync.Once

// configureSQLite turns off SQLite's per-connection lookaside allocator and installs the page cache.
// It must run before the first connection of the process is opened; when something else opened one
// first, SQLite refuses and the defaults stay, which costs memory but nothing else.
func configureSQLite() {
	configureOnce.Do(func() {
		tls := libc.NewTLS()
		defer tls.Close()
		va := libc.NewVaList(int32(lookasideSlot), int32(lookasideSlots))
		defer libc.Xfree(tls, va)
		sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_LOOKASIDE, va)
		// No bulk allocation of page-cache lines when a connection first reads: SQLite's default
		// takes 20 pages' worth at once, while an app that served a request uses a handful.
		pc := libc.NewVaList(uintptr(0), int32(0), int32(0))
		defer libc.Xfree(tls, pc)
		sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PAGECACHE, pc)
		// The driver's page cache in Go instead of SQLite's own: SQLite allocates a page and its
		// header (just over 4 KiB) in one block, which the allocator rounds up to 8 KiB; this one
		// allocates them apart, 4 KiB and 512 bytes. That is 10 kB less per open app (about four
		// pages each). Reading pages through it costs a little more: a page of 20 records read from
		// the database took about 10 % longer in process (BenchmarkDataPath, "-nothing-kept"), and
		// no difference showed over HTTP. If a connection was opened before this runs, SQLite keeps
		// its own cache.
		_ = sqlite.RegisterPageCache(pcache.New())
	})
}

// sqlitePragmas configure every connection, in this order (synchronous is set before the switch to
// WAL).
//
// The database runs in WAL mode with synchronous=NORMAL. That is durable against the process being
// killed: a commit returns only after its frames were written to the -wal file with write(2), so they
// sit in the kernel's page cache and reach the disk even if the process dies the next instant. What
// NORMAL gives up is durability against a power cut or kernel crash (the last commits before it may be
// rolled back, the database stays consistent); that trade buys commits without an fsync each.
//
// creating uses synchronous=OFF instead while the empty schema of a new database is built (and the
// connection that built it is closed): a power cut then can only lose the unacknowledged creation,
// a killed process nothing, and creating an app costs no fsync. The next open is NORMAL again.
func sqlitePragmas(creating bool) []string {
	sync := "NORMAL"
	if creating {
		sync = "OFF"
	}
	return []string{
		fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeoutMsec),
		"PRAGMA synchronous = " + sync,
		fmt.Sprintf("PRAGMA cache_size = -%d", cacheSizeKiB),
		"PRAGMA journal_mode = WAL",
		"PRAGMA foreign_keys = OFF",
	}
}

// OpenMode says whether OpenSQLite may create the file and how durable its commits are.
type OpenMode int

// The open modes.
const (
	// OpenExisting opens a database that must exist (a missing file of a registered app means lost
	// data, never an empty app). Commits are durable.
	OpenExisting OpenMode = iota
	// OpenOrCreate creates the file when absent. Commits are durable.
	OpenOrCreate
	// CreateNew builds the schema of a new database without an fsync; the connection must be closed
	// once that is done (see sqlitePragmas).
	CreateNew
)

// OpenSQLite opens the SQLite database at path.
func OpenSQLite(path string, mode OpenMode) (Conn, error) {
	create := mode != OpenExisting
	configureSQLite()
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("database path %q must not contain '?' or '#'", path)
	}
	if !create {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
	}
	c, err := openSQLite(path, create, sqlitePragmas(mode == CreateNew))
	if err != nil && mode != CreateNew && sharedMemoryFailed(err) {
		// The write-ahead log's shared-memory index (the -shm file) could not be made, as on a full
		// disk. With an exclusive lock the index lives in the process's memory instead, so the
		// database can still be read (and written once there is space). Nothing else may open the
		// file meanwhile, which the runtime, one per data dir and one connection per database, allows.
		c, err = openSQLite(path, create, append([]string{"PRAGMA locking_mode = EXCLUSIVE"}, sqlitePragmas(false)...))
		if err == nil {
			c.heapIndex = true
		}
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func openSQLite(path string, create bool, pragmas []string) (*sqliteConn, error) {
	c, err := capiOpen(path, create)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	s := &sqliteConn{c: c}
	for _, p := range pragmas {
		if _, err := s.Exec(context.Background(), p); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("open database: %s: %w", p, err)
		}
	}
	return s, nil
}

// sharedMemoryFailed recognises a failure to create or grow the -shm file of a database in WAL mode.
func sharedMemoryFailed(err error) bool {
	code, ok := sqliteCode(err)
	if !ok {
		return false
	}
	switch code {
	case sqlite3.SQLITE_IOERR_SHMOPEN, sqlite3.SQLITE_IOERR_SHMSIZE, sqlite3.SQLITE_IOERR_SHMMAP, sqlite3.SQLITE_FULL:
		return true
	}
	return false
}

type sqliteConn struct {
	c *capiConn
	// heapIndex says the connection keeps the write-ahead log's index in its own memory, locked
	// exclusively for good, because the -shm file could not be made (OpenSQLite).
	heapIndex bool
	// stmts are the prepared statements of this connection, by SQL text. Preparing (parsing and
	// planning) cost as much CPU as running a short query; a collection uses a handful of statements
	// over and over. Statements are dropped when the schema changes, and finalized on Close.
	stmts map[string]*capiStmt
	// writes counts the statements run that may have changed the database; counts remembers the
	// result of a count query and the value of writes when it was taken (see cachedCount).
	writes uint64
	counts map[string]keptCount
	// reads are answers of reads (a page, a record) as the data API sends them, kept until the next
	// write (see cachedRead); readBytes is their size.
	reads     map[string]keptRead
	readBytes int
	keptLimit int // bytes of answers kept at most; 0 keeps none (KeepAnswers)
	// asked are the hashes of the last reads asked for (keepRead): an answer is kept only when it was
	// asked for before, so a scan through many pages or records copies nothing.
	asked     *[askedReads]uint64
	askedNext int
}

// askedReads is how many recent reads a connection remembers having been asked for.
const askedReads = 32

var readSeed = maphash.MakeSeed()

type keptRead struct {
	coll   *Collection
	body   []byte
	writes uint64
}

// Bounds of the answers a connection keeps: the kept answers of every open app add up.
const (
	maxKeptRead = 8 << 10 // largest answer kept
	// DefaultKeptAnswers is how many bytes of answers the runtime lets an app's connection keep.
	DefaultKeptAnswers = 32 << 10
)

// KeepAnswers lets c keep the answers to reads asked for twice, up to maxBytes in all, until its next
// write (cachedRead). Only the runtime's connection to an app's SQLite database may: it is the
// database's only writer. Other connections, and every connection until this is called, keep none.
func KeepAnswers(c Conn, maxBytes int) {
	if s, ok := c.(*sqliteConn); ok {
		s.keptLimit = maxBytes
	}
}

// HoldLocks makes c, a connection to an SQLite database, take and keep the locks on the database file
// (on) or give them up (off). With the locks held, no other connection, of this process or another,
// can read or write the file, and c itself takes no lock per statement: a record read by id took less
// than half the time (BenchmarkDataPath), since SQLite otherwise takes and releases a lock on the
// -shm file with fcntl(2) around every statement. The locks are taken at once, waiting at most
// holdLocksWait for a connection that has the file open to close it; when one still does, c gives up,
// works on taking its locks statement by statement, and HoldLocks says why.
//
// The connection must have been opened in the normal locking mode (OpenSQLite does, unless the -shm
// file could not be made), so that the write-ahead log's index stays in the shared -shm mapping and
// the mode can be switched back; for other connections HoldLocks does nothing.
func HoldLocks(ctx context.Context, c Conn, on bool) error {
	s, ok := c.(*sqliteConn)
	if !ok || s.heapIndex {
		return nil
	}
	if !on {
		return s.lockingMode(ctx, "NORMAL")
	}
	if _, err := s.Exec(ctx, "PRAGMA locking_mode = EXCLUSIVE"); err != nil {
		return err
	}
	// SQLite takes the exclusive lock when the connection next writes; an empty write transaction
	// takes it now, so that a failure shows here and not in a request.
	// The statements are not kept prepared (execOnce): most apps never write.
	_, err := s.Exec(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", holdLocksWait.Milliseconds()))
	if err == nil {
		if err = s.execOnce(ctx, "BEGIN IMMEDIATE"); err == nil {
			err = s.execOnce(ctx, "COMMIT")
		}
	}
	_, rerr := s.Exec(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeoutMsec))
	if err != nil {
		return errors.Join(fmt.Errorf("another connection has the database open: %w", err),
			s.lockingMode(context.WithoutCancel(ctx), "NORMAL"))
	}
	return rerr
}

// holdLocksWait is how long HoldLocks waits for other connections to leave the file.
const holdLocksWait = 100 * time.Millisecond

// lockingMode switches the connection's locking mode; switched to NORMAL, it gives up the locks it
// holds at once (SQLite would otherwise keep them until the file is next read).
func (s *sqliteConn) lockingMode(ctx context.Context, mode string) error {
	if _, err := s.Exec(ctx, "PRAGMA locking_mode = "+mode); err != nil {
		return err
	}
	return s.Query(ctx, "SELECT count(*) FROM sqlite_master", nil, func([]any) error { return nil })
}

func (s *sqliteConn) keepsReads() bool { return s.keptLimit > 0 }

// cachedRead returns the answer kept for key, read from coll, if no statement that may write has run
// since it was read. Like cachedCount, it is exact because the connection is its database's only
// writer; a new model (coll) or a reopened database (a new connection) starts afresh.
func (s *sqliteConn) cachedRead(coll *Collection, key string) ([]byte, bool) {
	k, ok := s.reads[key]
	if !ok {
		return nil, false
	}
	if k.writes != s.writes {
		clear(s.reads) // every kept answer is older than that write
		s.readBytes = 0
		return nil, false
	}
	return k.body, k.coll == coll
}

// keepRead keeps body, the answer to key read from coll, if key was asked for recently (see
// cachedRead).
func (s *sqliteConn) keepRead(coll *Collection, key string, body []byte) {
	if len(body) > min(maxKeptRead, s.keptLimit) {
		return
	}
	h := maphash.String(readSeed, key)
	if s.asked == nil {
		s.asked = new([askedReads]uint64)
	}
	if !slices.Contains(s.asked[:], h) {
		s.asked[s.askedNext] = h
		s.askedNext = (s.askedNext + 1) % askedReads
		return
	}
	if s.reads == nil {
		s.reads = make(map[string]keptRead, 4)
	}
	if old, ok := s.reads[key]; ok {
		s.readBytes -= len(old.body)
	}
	if s.readBytes+len(body) > s.keptLimit {
		clear(s.reads)
		s.readBytes = 0
	}
	s.reads[key] = keptRead{coll: coll, body: slices.Clone(body), writes: s.writes}
	s.readBytes += len(body)
}

type keptCount struct {
	n      int64
	writes uint64
}

// cachedCount returns what query (a count without arguments) answered when it was last run, if no
// statement that may write has run since. The connection is its database's only writer (see ReadTx),
// so such a count is exact: a list of a big collection need not count it again for every page.
func (s *sqliteConn) cachedCount(query string) (int64, bool) {
	k, ok := s.counts[query]
	return k.n, ok && k.writes == s.writes
}

// keepCount remembers what query answered (see cachedCount).
func (s *sqliteConn) keepCount(query string, n int64) {
	if s.counts == nil {
		s.counts = make(map[string]keptCount, 2)
	}
	if len(s.counts) >= maxStmts {
		clear(s.counts)
	}
	s.counts[query] = keptCount{n: n, writes: s.writes}
}

// mayWrite reports whether a statement may change the database: anything but a SELECT.
func mayWrite(query string) bool { return !startsWith(query, "SELECT") }

// startsWith reports whether query's first word is one of verbs (in any case).
func startsWith(query string, verbs ...string) bool {
	q := strings.TrimLeft(query, " \t\n")
	for _, verb := range verbs {
		if len(q) >= len(verb) && strings.EqualFold(q[:len(verb)], verb) {
			return true
		}
	}
	return false
}

// maxStmts bounds the statements a connection keeps: its collections' reads and writes, the
// transaction statements, and a few lists with filters or sorts. Each costs a few KiB of SQLite's
// memory per open app; past the bound the cache starts over.
const maxStmts = 32

func (s *sqliteConn) Dialect() Dialect { return SQLite }

func (s *sqliteConn) Close() error {
	s.dropStmts()
	return s.c.close()
}

// stmt returns the prepared statement for query, preparing and keeping it when new.
func (s *sqliteConn) stmt(query string) (*capiStmt, error) {
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.c.prepareOne(query)
	if err != nil {
		return nil, err
	}
	if len(s.stmts) >= maxStmts {
		s.dropStmts()
	}
	if s.stmts == nil {
		s.stmts = make(map[string]*capiStmt, 8)
	}
	s.stmts[query] = st
	return st, nil
}

func (s *sqliteConn) dropStmts() {
	for _, st := range s.stmts {
		st.finalize()
	}
	clear(s.stmts)
}

// runsOnce reports whether a statement is one a connection runs once (the PRAGMAs of opening it):
// keeping it prepared would cost memory in every open app for nothing.
func runsOnce(query string) bool { return startsWith(query, "PRAGMA") }

// changesSchema reports whether a statement creates, alters or drops something. SQLite re-prepares a
// kept statement by itself when the schema changed under it, but one that names a dropped table or
// column would then fail for good; dropping them all keeps the cache to statements that still work.
func changesSchema(query string) bool { return startsWith(query, "CREATE", "ALTER", "DROP") }

func (s *sqliteConn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	s.writes++
	switch {
	case changesSchema(query):
		s.dropStmts()
		fallthrough
	case runsOnce(query):
		return s.c.execScript(ctx, query, args)
	}
	st, err := s.stmt(query)
	if err != nil {
		return 0, err
	}
	return st.exec(ctx, args)
}

// execOnce is Exec of a statement that is not kept prepared.
func (s *sqliteConn) execOnce(ctx context.Context, query string) error {
	s.writes++
	_, err := s.c.execScript(ctx, query, nil)
	return err
}

// Query runs query. A statement whose context is marked bounded (a lookup by id, an early page) cannot
// run long: it is spared the goroutine that would interrupt it when ctx ends, and ctx is looked at
// between rows only.
func (s *sqliteConn) Query(ctx context.Context, query string, args []any, fn func(row []any) error) error {
	if mayWrite(query) {
		s.writes++
	}
	st, err := s.stmt(query)
	if err != nil {
		return err
	}
	row := st.rowBuffer()
	err = st.run(ctx, args, row, fn)
	clear(row) // keeps no value of the last row alive
	return err
}

// sqliteFull recognises SQLITE_FULL (a write found the disk full).
func sqliteFull(err error) bool {
	code, ok := sqliteCode(err)
	return ok && code&0xff == sqlite3.SQLITE_FULL
}

// sqliteUnique recognises a UNIQUE constraint failure and names the column ("table.column" in SQLite's text).
func sqliteUnique(err error) (collection, field string, ok bool) {
	if code, ok := sqliteCode(err); !ok || code != sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		return "", "", false
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, "failed: "); i >= 0 {
		msg = msg[i+len("failed: "):]
		if j := strings.IndexAny(msg, " ,("); j >= 0 {
			msg = msg[:j]
		}
		if t, c, found := strings.Cut(msg, "."); found {
			return t, c, true
		}
	}
	return "", "", true
}

// BackupSQLite writes a consistent snapshot of the database at path into dst (which must not exist),
// through a connection of its own so the app keeps serving while it runs: VACUUM INTO reads inside one
// read transaction, which WAL mode lets run beside writers.
func BackupSQLite(ctx context.Context, path, dst string) error {
	c, err := OpenSQLite(path, OpenExisting)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Exec(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("snapshot database: %w", err)
	}
	return nil
}

// CheckSQLite opens a file that claims to be a snapshot, verifies it, switches it to WAL mode and
// returns the open connection. It never creates a file.
func CheckSQLite(ctx context.Context, path string) (Conn, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 16)
	_, err = io.ReadFull(f, head)
	_ = f.Close()
	if err != nil || string(head) != "SQLite format 3\x00" {
		return nil, errors.New("not a SQLite database snapshot")
	}
	c, err := OpenSQLite(path, OpenExisting)
	if err != nil {
		return nil, err
	}
	var result string
	err = c.Query(ctx, "PRAGMA quick_check", nil, func(row []any) error {
		if s, ok := row[0].(string); ok && result == "" {
			result = s
		}
		return nil
	})
	if err == nil && result != "ok" {
		err = fmt.Errorf("snapshot is damaged: %s", result)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}
