package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/appfleet/appfleet/spec"
)

var (
	collectionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
	fieldNameRE      = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,39}$`)
)

// ValidateCollections checks a data model and returns one line per problem, each naming its path
// (collections.<name>.<field>). A nil result means the model can become tables.
func ValidateCollections(cols []spec.Collection) []string {
	var probs []string
	seen := map[string]bool{}
	for i, c := range cols {
		path := fmt.Sprintf("collections[%d]", i)
		switch {
		case !collectionNameRE.MatchString(c.Name):
			probs = append(probs, fmt.Sprintf("%s.name: %q must start with a lowercase letter and hold at most 40 lowercase letters, digits and underscores", path, c.Name))
			continue
		case strings.HasPrefix(c.Name, "sqlite_"):
			probs = append(probs, fmt.Sprintf("%s.name: %q is reserved", path, c.Name))
			continue
		case seen[c.Name]:
			probs = append(probs, fmt.Sprintf("%s.name: collection %q is declared twice", path, c.Name))
			continue
		}
		seen[c.Name] = true
		path = "collections." + c.Name
		fseen := map[string]bool{}
		for j, f := range c.Fields {
			fpath := fmt.Sprintf("%s.fields[%d]", path, j)
			lower := strings.ToLower(f.Name)
			switch {
			case !fieldNameRE.MatchString(f.Name):
				probs = append(probs, fmt.Sprintf("%s.name: %q must start with a letter and hold at most 40 letters, digits and underscores", fpath, f.Name))
				continue
			case slices.ContainsFunc(spec.ReservedFieldNames, func(r string) bool { return strings.EqualFold(r, f.Name) }):
				probs = append(probs, fmt.Sprintf("%s.name: %q is reserved; every collection has id, createdAt and updatedAt", fpath, f.Name))
				continue
			case fseen[lower]:
				probs = append(probs, fmt.Sprintf("%s.name: field %q is declared twice (names are compared without case)", fpath, f.Name))
				continue
			}
			fseen[lower] = true
			fpath = path + "." + f.Name
			if !slices.Contains(spec.FieldTypes, f.Type) {
				probs = append(probs, fmt.Sprintf("%s.type: %q is not a field type; use one of %s", fpath, f.Type, strings.Join(spec.FieldTypes, ", ")))
				continue
			}
			if f.Type == spec.TypeEnum {
				if len(f.Values) == 0 {
					probs = append(probs, fmt.Sprintf("%s.values: an enum needs at least one value", fpath))
				}
				vseen := map[string]bool{}
				for _, v := range f.Values {
					if vseen[v] {
						probs = append(probs, fmt.Sprintf("%s.values: %q is listed twice", fpath, v))
					}
					vseen[v] = true
				}
			} else if len(f.Values) > 0 {
				probs = append(probs, fmt.Sprintf("%s.values: only enum fields have values", fpath))
			}
			if f.Unique && f.Type == spec.TypeJSON {
				probs = append(probs, fmt.Sprintf("%s.unique: a json field cannot be unique", fpath))
			}
			if f.Default != nil {
				if _, err := coerce(SQLite, f, f.Default); err != nil {
					probs = append(probs, fmt.Sprintf("%s.default: %v", fpath, err))
				}
			}
		}
	}
	return probs
}

// Change is one step of a migration, described for people (and for the 409 that refuses data loss).
type Change struct {
	// Path is collections.<name>[.<field>].
	Path string
	// Description says what happens, e.g. "add field (string)" or "drop collection (its 12 records are lost)".
	Description string
	// DataLoss is true when the change destroys stored values.
	DataLoss bool

	apply func(ctx context.Context, c Conn) error
}

func (ch Change) String() string { return ch.Path + ": " + ch.Description }

// DataLossError refuses a migration that would lose data; Changes lists each such change.
type DataLossError struct {
	Changes []Change
}

func (e *DataLossError) Error() string {
	lines := make([]string, len(e.Changes))
	for i, c := range e.Changes {
		lines[i] = c.String()
	}
	return "the change loses data and data loss was not allowed: " + strings.Join(lines, "; ")
}

// Details is one line per data-losing change.
func (e *DataLossError) Details() []string {
	lines := make([]string, len(e.Changes))
	for i, c := range e.Changes {
		lines[i] = c.String()
	}
	return lines
}

// ErrMigration wraps every failure of a migration that was allowed to run but could not complete.
var ErrMigration = errors.New("migration failed")

// PlanMigration lists the changes that turn the tables of from into those of to. It does no I/O.
func PlanMigration(d Dialect, from, to []spec.Collection) []Change {
	var out []Change
	old := map[string]spec.Collection{}
	for _, c := range from {
		old[c.Name] = c
	}
	keep := map[string]bool{}
	for _, c := range to {
		keep[c.Name] = true
		prev, ok := old[c.Name]
		if !ok {
			out = append(out, Change{
				Path:        "collections." + c.Name,
				Description: fmt.Sprintf("create collection (%d fields)", len(c.Fields)),
				apply:       func(ctx context.Context, conn Conn) error { return createCollection(ctx, conn, c) },
			})
			continue
		}
		out = append(out, planFields(d, prev, c)...)
	}
	for _, c := range from {
		if keep[c.Name] {
			continue
		}
		out = append(out, Change{
			Path:        "collections." + c.Name,
			Description: "drop collection (its records are lost)",
			DataLoss:    true,
			apply: func(ctx context.Context, conn Conn) error {
				_, err := conn.Exec(ctx, "DROP TABLE "+quote(c.Name))
				return err
			},
		})
	}
	return out
}

func planFields(d Dialect, from, to spec.Collection) []Change {
	var out []Change
	table := to.Name
	old := map[string]spec.Field{}
	for _, f := range from.Fields {
		old[f.Name] = f
	}
	byLower := map[string]spec.Field{}
	for _, f := range from.Fields {
		byLower[strings.ToLower(f.Name)] = f
	}
	declared := map[string]bool{}
	for _, f := range to.Fields {
		declared[f.Name] = true
	}
	keep := map[string]bool{}
	for _, f := range to.Fields {
		keep[f.Name] = true
		path := "collections." + table + "." + f.Name
		prev, ok := old[f.Name]
		if was, found := byLower[strings.ToLower(f.Name)]; !ok && found && !declared[was.Name] {
			// Names are unique without case, so a field whose name changed only in case is the same
			// field renamed: its values are kept (SQLite could not even hold both names at once).
			out = append(out, Change{
				Path:        path,
				Description: fmt.Sprintf("rename field %s -> %s (values kept)", was.Name, f.Name),
				apply:       func(ctx context.Context, c Conn) error { return renameField(ctx, c, table, was, f.Name) },
			})
			keep[was.Name] = true
			prev, ok = was, true
			prev.Name = f.Name
		}
		if !ok {
			out = append(out, Change{
				Path:        path,
				Description: "add field (" + f.Type + ")",
				apply:       func(ctx context.Context, c Conn) error { return addField(ctx, c, table, f) },
			})
			continue
		}
		if prev.Type != f.Type {
			if conv, ok := convertible(prev, f); ok {
				out = append(out, Change{
					Path:        path,
					Description: fmt.Sprintf("change type %s -> %s (values converted)", prev.Type, f.Type),
					apply:       func(ctx context.Context, c Conn) error { return convertField(ctx, c, table, prev, f, conv) },
				})
			} else {
				out = append(out, Change{
					Path:        path,
					Description: fmt.Sprintf("change type %s -> %s (stored values are lost)", prev.Type, f.Type),
					DataLoss:    true,
					apply: func(ctx context.Context, c Conn) error {
						if err := dropField(ctx, c, table, prev); err != nil {
							return err
						}
						return addField(ctx, c, table, f)
					},
				})
			}
			continue
		}
		if f.Type == spec.TypeEnum && !subset(prev.Values, f.Values) {
			out = append(out, Change{
				Path:        path,
				Description: "narrow enum values to " + strings.Join(f.Values, ", "),
				apply:       func(ctx context.Context, c Conn) error { return checkEnum(ctx, c, table, f) },
			})
		}
		if prev.Unique != f.Unique {
			desc := "drop unique constraint"
			if f.Unique {
				desc = "add unique constraint"
			}
			out = append(out, Change{
				Path:        path,
				Description: desc,
				apply: func(ctx context.Context, c Conn) error {
					if f.Unique {
						return createUnique(ctx, c, table, f.Name)
					}
					_, err := c.Exec(ctx, "DROP INDEX IF EXISTS "+quote(uniqueIndexName(table, f.Name)))
					return err
				},
			})
		}
		if f.Required && !prev.Required {
			out = append(out, Change{
				Path:        path,
				Description: "make required",
				apply:       func(ctx context.Context, c Conn) error { return requireField(ctx, c, table, f) },
			})
		}
	}
	for _, f := range from.Fields {
		if keep[f.Name] {
			continue
		}
		out = append(out, Change{
			Path:        "collections." + table + "." + f.Name,
			Description: "drop field (its values are lost)",
			DataLoss:    true,
			apply:       func(ctx context.Context, c Conn) error { return dropField(ctx, c, table, f) },
		})
	}
	return out
}

func subset(a, b []string) bool {
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

// RecordedCollections reads the data model the database was last migrated to (nil for a new database).
func RecordedCollections(ctx context.Context, c Conn) ([]spec.Collection, bool, error) {
	raw, found, err := metaValue(ctx, c, metaCollections)
	if err != nil || !found {
		return nil, false, err
	}
	var cols []spec.Collection
	if err := json.Unmarshal([]byte(raw), &cols); err != nil {
		return nil, false, fmt.Errorf("read recorded data model: %w", err)
	}
	return cols, true, nil
}

// RecordedGeneration is the generation of the app's spec the database was last migrated for, as
// Migrate recorded it in the migration's own transaction; 0 when none was recorded.
func RecordedGeneration(ctx context.Context, c Conn) (int64, error) {
	raw, found, err := metaValue(ctx, c, metaGeneration)
	if err != nil || !found {
		return 0, err
	}
	return strconv.ParseInt(raw, 10, 64)
}

// metaValue reads one key of metaTable; found is false when the table or the key is absent.
func metaValue(ctx context.Context, c Conn, key string) (string, bool, error) {
	exists := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '" + metaTable + "'"
	if c.Dialect() == Postgres {
		exists = "SELECT count(*) FROM pg_catalog.pg_class WHERE oid = to_regclass('" + metaTable + "')"
	}
	var n int64
	if err := c.Query(ctx, exists, nil, func(row []any) error { n = asInt(row[0]); return nil }); err != nil || n == 0 {
		return "", false, err
	}
	var raw string
	found := false
	err := c.Query(ctx, "SELECT value FROM "+metaTable+" WHERE key = "+c.Dialect().Placeholder(1), []any{key}, func(row []any) error {
		raw, found = asString(row[0]), true
		return nil
	})
	return raw, found, err
}

func ensureMeta(ctx context.Context, c Conn) error {
	_, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+metaTable+" (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
	return err
}

func setMeta(ctx context.Context, c Conn, key, value string) error {
	d := c.Dialect()
	_, err := c.Exec(ctx, "INSERT INTO "+metaTable+" (key, value) VALUES ("+d.Placeholder(1)+", "+d.Placeholder(2)+
		") ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value)
	return err
}

func recordCollections(ctx context.Context, c Conn, cols []spec.Collection) error {
	if cols == nil {
		cols = []spec.Collection{}
	}
	b, err := json.Marshal(cols)
	if err != nil {
		return err
	}
	return setMeta(ctx, c, metaCollections, string(b))
}

// upgradeFormat brings the internal objects of a database of an older format (whose data model is
// cols) to currentFormat; the caller runs it inside the migration's transaction.
func upgradeFormat(ctx context.Context, c Conn, cols []spec.Collection) error {
	for _, col := range cols {
		for _, f := range col.Fields {
			if !f.Unique {
				continue
			}
			if _, err := c.Exec(ctx, "DROP INDEX IF EXISTS "+quote(legacyUniqueIndexName(col.Name, f.Name))); err != nil {
				return err
			}
			if err := createUnique(ctx, c, col.Name, f.Name); err != nil {
				return err
			}
		}
	}
	return setMeta(ctx, c, metaFormat, strconv.Itoa(currentFormat))
}

// Migrate brings the database's tables to the data model to, in one transaction; see MigrateTo.
func Migrate(ctx context.Context, c Conn, to []spec.Collection, allowDataLoss bool) ([]Change, error) {
	return MigrateTo(ctx, c, to, MigrateOptions{AllowDataLoss: allowDataLoss})
}

// MigrateOptions qualify MigrateTo.
type MigrateOptions struct {
	// AllowDataLoss lets data-losing changes run.
	AllowDataLoss bool
	// Generation, when not 0, is recorded in the database in the migration's transaction (also when the
	// tables do not change), so that after a crash the runtime can tell whether the migration of that
	// generation committed (RecordedGeneration).
	Generation int64
}

// MigrateTo brings the database's tables to the data model to, in one transaction. It plans from the
// model recorded in the database itself, so a migration interrupted anywhere is planned again from
// where the database really is. Data-losing changes are refused with a *DataLossError (before
// anything is touched) unless opts.AllowDataLoss. Any other failure wraps ErrMigration and leaves the
// schema and data as they were. A database with nothing to change is not written to (so that an app
// can be opened and read on a full disk); the format of its internal objects is brought up to date
// with the next change.
func MigrateTo(ctx context.Context, c Conn, to []spec.Collection, opts MigrateOptions) ([]Change, error) {
	from, recorded, err := RecordedCollections(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMigration, err)
	}
	changes := PlanMigration(c.Dialect(), from, to)
	if !opts.AllowDataLoss {
		var lossy []Change
		for _, ch := range changes {
			if ch.DataLoss {
				lossy = append(lossy, ch)
			}
		}
		if len(lossy) > 0 {
			return nil, &DataLossError{Changes: lossy}
		}
	}
	var gen int64
	if opts.Generation != 0 {
		if gen, err = RecordedGeneration(ctx, c); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMigration, err)
		}
	}
	if len(changes) == 0 && recorded && gen == opts.Generation {
		return nil, nil
	}
	format := currentFormat
	if recorded {
		raw, found, err := metaValue(ctx, c, metaFormat)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMigration, err)
		}
		if format = 1; found {
			format, _ = strconv.Atoi(raw)
		}
	}
	err = InTx(ctx, c, func() error {
		if err := ensureMeta(ctx, c); err != nil {
			return err
		}
		if format < currentFormat {
			if err := upgradeFormat(ctx, c, from); err != nil {
				return fmt.Errorf("rename internal objects: %w", err)
			}
		} else if !recorded {
			if err := setMeta(ctx, c, metaFormat, strconv.Itoa(currentFormat)); err != nil {
				return err
			}
		}
		for _, ch := range changes {
			if err := ch.apply(ctx, c); err != nil {
				return fmt.Errorf("%s: %s: %w", ch.Path, ch.Description, err)
			}
		}
		if opts.Generation != 0 {
			if err := setMeta(ctx, c, metaGeneration, strconv.FormatInt(opts.Generation, 10)); err != nil {
				return err
			}
		}
		return recordCollections(ctx, c, to)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMigration, err)
	}
	return changes, nil
}

func createCollection(ctx context.Context, c Conn, col spec.Collection) error {
	d := c.Dialect()
	ts := d.ColumnType(spec.TypeDatetime)
	cols := []string{d.idColumn(), quote("createdAt") + " " + ts + " NOT NULL", quote("updatedAt") + " " + ts + " NOT NULL"}
	for _, f := range col.Fields {
		cols = append(cols, quote(f.Name)+" "+d.ColumnType(f.Type))
	}
	if _, err := c.Exec(ctx, "CREATE TABLE "+quote(col.Name)+" (\n  "+strings.Join(cols, ",\n  ")+"\n)"); err != nil {
		return err
	}
	for _, f := range col.Fields {
		if f.Unique {
			if err := createUnique(ctx, c, col.Name, f.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

func createUnique(ctx context.Context, c Conn, table, field string) error {
	_, err := c.Exec(ctx, "CREATE UNIQUE INDEX "+quote(uniqueIndexName(table, field))+" ON "+quote(table)+" ("+quote(field)+")")
	if err != nil {
		if _, _, ok := uniqueViolation(c.Dialect(), err); ok {
			return fmt.Errorf("stored records repeat a value of %q", field)
		}
	}
	return err
}

func countWhere(ctx context.Context, c Conn, table, where string, args ...any) (int64, error) {
	var n int64
	err := c.Query(ctx, "SELECT COUNT(*) FROM "+quote(table)+" WHERE "+where, args, func(row []any) error {
		n = asInt(row[0])
		return nil
	})
	return n, err
}

func addField(ctx context.Context, c Conn, table string, f spec.Field) error {
	d := c.Dialect()
	if _, err := c.Exec(ctx, "ALTER TABLE "+quote(table)+" ADD COLUMN "+quote(f.Name)+" "+d.ColumnType(f.Type)); err != nil {
		return err
	}
	if f.Default != nil {
		v, err := coerce(d, f, f.Default)
		if err != nil {
			return err
		}
		if _, err := c.Exec(ctx, "UPDATE "+quote(table)+" SET "+quote(f.Name)+" = "+d.Placeholder(1)+d.bindCast(f.Type), v); err != nil {
			return err
		}
	} else if f.Required {
		n, err := countWhere(ctx, c, table, "1 = 1")
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("the field is required and has no default, but the collection holds %d records; give it a default", n)
		}
	}
	if f.Unique {
		return createUnique(ctx, c, table, f.Name)
	}
	return nil
}

func renameField(ctx context.Context, c Conn, table string, f spec.Field, to string) error {
	if f.Unique {
		if _, err := c.Exec(ctx, "DROP INDEX IF EXISTS "+quote(uniqueIndexName(table, f.Name))); err != nil {
			return err
		}
	}
	if _, err := c.Exec(ctx, "ALTER TABLE "+quote(table)+" RENAME COLUMN "+quote(f.Name)+" TO "+quote(to)); err != nil {
		return err
	}
	if f.Unique {
		return createUnique(ctx, c, table, to)
	}
	return nil
}

func dropField(ctx context.Context, c Conn, table string, f spec.Field) error {
	if _, err := c.Exec(ctx, "DROP INDEX IF EXISTS "+quote(uniqueIndexName(table, f.Name))); err != nil {
		return err
	}
	_, err := c.Exec(ctx, "ALTER TABLE "+quote(table)+" DROP COLUMN "+quote(f.Name))
	return err
}

func requireField(ctx context.Context, c Conn, table string, f spec.Field) error {
	d := c.Dialect()
	if f.Default != nil {
		v, err := coerce(d, f, f.Default)
		if err != nil {
			return err
		}
		_, err = c.Exec(ctx, "UPDATE "+quote(table)+" SET "+quote(f.Name)+" = "+d.Placeholder(1)+d.bindCast(f.Type)+" WHERE "+quote(f.Name)+" IS NULL", v)
		return err
	}
	n, err := countWhere(ctx, c, table, quote(f.Name)+" IS NULL")
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%d records have no value; give the field a default", n)
	}
	return nil
}

func checkEnum(ctx context.Context, c Conn, table string, f spec.Field) error {
	d := c.Dialect()
	ph := make([]string, len(f.Values))
	args := make([]any, len(f.Values))
	for i, v := range f.Values {
		ph[i] = d.Placeholder(i + 1)
		args[i] = v
	}
	n, err := countWhere(ctx, c, table, quote(f.Name)+" IS NOT NULL AND "+quote(f.Name)+" NOT IN ("+strings.Join(ph, ", ")+")", args...)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%d records hold a value that is not one of %s", n, strings.Join(f.Values, ", "))
	}
	return nil
}

// conversion is how stored values of one type become another's, per dialect; "" means no change.
type conversion struct{ sqlite, postgres string }

var textTypes = []string{spec.TypeString, spec.TypeText, spec.TypeEnum}

// convertible reports whether a type change keeps every value, and how to convert. {x} stands for the column.
func convertible(from, to spec.Field) (conversion, bool) {
	switch {
	case slices.Contains(textTypes, from.Type) && slices.Contains(textTypes, to.Type):
		return conversion{}, true
	case from.Type == spec.TypeInteger && to.Type == spec.TypeNumber:
		return conversion{"CAST({x} AS REAL)", "{x}::double precision"}, true
	case from.Type == spec.TypeBoolean && to.Type == spec.TypeInteger:
		return conversion{"", "{x}::int::bigint"}, true
	case to.Type == spec.TypeString || to.Type == spec.TypeText:
		switch from.Type {
		case spec.TypeInteger, spec.TypeNumber:
			return conversion{"CAST({x} AS TEXT)", "{x}::text"}, true
		case spec.TypeBoolean:
			return conversion{"CASE WHEN {x} IS NULL THEN NULL WHEN {x} THEN 'true' ELSE 'false' END",
				"CASE WHEN {x} IS NULL THEN NULL WHEN {x} THEN 'true' ELSE 'false' END"}, true
		case spec.TypeDatetime:
			return conversion{"", `to_char({x} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`}, true
		}
	}
	return conversion{}, false
}

func convertField(ctx context.Context, c Conn, table string, from, to spec.Field, conv conversion) error {
	d := c.Dialect()
	if to.Type == spec.TypeEnum {
		if err := checkEnum(ctx, c, table, to); err != nil {
			return err
		}
	}
	expr := conv.sqlite
	if d == Postgres {
		expr = conv.postgres
	}
	if expr != "" {
		expr = strings.ReplaceAll(expr, "{x}", quote(from.Name))
		if _, err := c.Exec(ctx, "DROP INDEX IF EXISTS "+quote(uniqueIndexName(table, from.Name))); err != nil {
			return err
		}
		if d == Postgres {
			if _, err := c.Exec(ctx, "ALTER TABLE "+quote(table)+" ALTER COLUMN "+quote(to.Name)+" TYPE "+d.ColumnType(to.Type)+" USING "+expr); err != nil {
				return err
			}
		} else {
			tmp := "_new_" + to.Name
			stmts := []string{
				"ALTER TABLE " + quote(table) + " ADD COLUMN " + quote(tmp) + " " + d.ColumnType(to.Type),
				"UPDATE " + quote(table) + " SET " + quote(tmp) + " = " + expr,
				"ALTER TABLE " + quote(table) + " DROP COLUMN " + quote(from.Name),
				"ALTER TABLE " + quote(table) + " RENAME COLUMN " + quote(tmp) + " TO " + quote(to.Name),
			}
			for _, s := range stmts {
				if _, err := c.Exec(ctx, s); err != nil {
					return err
				}
			}
		}
		if to.Unique {
			if err := createUnique(ctx, c, table, to.Name); err != nil {
				return err
			}
		}
	}
	if to.Unique != from.Unique && expr == "" {
		if to.Unique {
			return createUnique(ctx, c, table, to.Name)
		}
		_, err := c.Exec(ctx, "DROP INDEX IF EXISTS "+quote(uniqueIndexName(table, to.Name)))
		return err
	}
	if to.Required && !from.Required {
		return requireField(ctx, c, table, to)
	}
	return nil
}
