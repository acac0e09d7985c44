package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/appfleet/appfleet/spec"
)

// CopyData copies every record of cols from one database into another whose tables already exist and
// are empty, keeping ids and timestamps. The two may use different dialects: values pass through their
// JSON form.
func CopyData(ctx context.Context, from, to Conn, cols []spec.Collection) error {
	src := Compile(from.Dialect(), cols)
	dst := Compile(to.Dialect(), cols)
	for _, c := range cols {
		s, d := src[c.Name], dst[c.Name]
		dl := to.Dialect()
		ph := make([]string, len(d.columns))
		quoted := make([]string, len(d.columns))
		for i, name := range d.columns {
			ph[i] = dl.Placeholder(i+1) + dl.bindCast(d.types[i])
			quoted[i] = quote(name)
		}
		ins := "INSERT INTO " + quote(c.Name) + " (" + strings.Join(quoted, ", ") + ") VALUES (" + strings.Join(ph, ", ") + ")"
		fields := append([]spec.Field{{Name: "id", Type: spec.TypeInteger}, {Name: "createdAt", Type: spec.TypeDatetime},
			{Name: "updatedAt", Type: spec.TypeDatetime}}, c.Fields...)
		err := from.Query(ctx, "SELECT "+s.selectList+" FROM "+quote(c.Name)+" ORDER BY id", nil, func(row []any) error {
			rec, err := s.scan(row)
			if err != nil {
				return err
			}
			args := make([]any, len(rec.values))
			for i, v := range rec.values {
				if args[i], err = coerce(dl, fields[i], v); err != nil {
					return fmt.Errorf("field %q: %w", fields[i].Name, err)
				}
			}
			_, err = to.Exec(ctx, ins, args...)
			return err
		})
		if err != nil {
			return fmt.Errorf("copy collection %q: %w", c.Name, err)
		}
		if dl == Postgres {
			if _, err := to.Exec(ctx, "SELECT setval(pg_get_serial_sequence("+quoteLiteral(quote(c.Name))+", 'id'), COALESCE(MAX(id), 0) + 1, false) FROM "+quote(c.Name)); err != nil {
				return fmt.Errorf("reset ids of %q: %w", c.Name, err)
			}
		}
	}
	return nil
}

// CopySQLiteFile copies every record of cols from the SQLite file at srcPath, whose tables hold the
// same columns, into the empty tables of dst (an SQLite database too), in one transaction.
func CopySQLiteFile(ctx context.Context, dst Conn, srcPath string, cols []spec.Collection) error {
	if _, err := dst.Exec(ctx, "ATTACH DATABASE ? AS src", srcPath); err != nil {
		return err
	}
	defer func() { _, _ = dst.Exec(context.WithoutCancel(ctx), "DETACH DATABASE src") }()
	return InTx(ctx, dst, func() error {
		for _, c := range cols {
			names := []string{quote("id"), quote("createdAt"), quote("updatedAt")}
			for _, f := range c.Fields {
				names = append(names, quote(f.Name))
			}
			list := strings.Join(names, ", ")
			if _, err := dst.Exec(ctx, "INSERT INTO main."+quote(c.Name)+" ("+list+") SELECT "+list+" FROM src."+quote(c.Name)+" ORDER BY id"); err != nil {
				return fmt.Errorf("copy collection %q: %w", c.Name, err)
			}
		}
		return nil
	})
}

// ClearData deletes every record of cols (and resets their ids).
func ClearData(ctx context.Context, c Conn, cols []spec.Collection) error {
	for _, col := range cols {
		q := "DELETE FROM " + quote(col.Name)
		if c.Dialect() == Postgres {
			q = "TRUNCATE " + quote(col.Name) + " RESTART IDENTITY"
		}
		if _, err := c.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
