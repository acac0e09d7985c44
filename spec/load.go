package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Limits that keep hostile input cheap: every file is refused before parsing when it is larger than
// MaxFileSize or holds more than maxItemsPerFile YAML items, and decoding stops after visiting
// maxNodesPerFile nodes, counting every node an alias repeats.
const (
	MaxFileSize     = 4 << 20
	maxItemsPerFile = 50_000
	maxNodesPerFile = 250_000
	maxDiagsPerFile = 100
)

// StdinName is the file name diagnostics give to manifests read from standard input.
const StdinName = "<stdin>"

// Load reads manifests from files, directories and "-" (stdin) and returns them with defaults applied,
// together with every problem found. Directories are read recursively in sorted order, taking *.yaml and
// *.yml files and skipping hidden directories; a file named explicitly is read whatever its extension;
// no paths means ".". Decoding is strict (an unknown field is an error), every diagnostic names a
// file:line:column, and validation checks everything that can be checked without a network: names,
// references between documents, collections, and that every secret reference can be resolved.
//
// Load never returns nil Manifests, but they are only meaningful when the diagnostics hold no error.
// Load reads environment variables and files that secret references name but keeps no secret value.
func Load(paths []string, stdin io.Reader) (*Manifests, Diagnostics) {
	return LoadWith(paths, stdin, LoadOptions{})
}

// LoadOptions change what Load requires.
type LoadOptions struct {
	// SecretsOptional turns a secret that cannot be read now (an unset variable, a missing file) from an
	// error into a warning, for commands that never send secrets to a runtime (status, destroy).
	// ResolveSecrets still fails on such a secret.
	SecretsOptional bool
	// Dir is, for LoadFS only, the directory on disk that the file system's root stands for: relative
	// references (a secret's fromFile) resolve against it, and Manifests.Root is it. Empty means the
	// working directory.
	Dir string
	// Name is, for LoadFS only, what names the fleet when no Fleet document does (made into a DNS label,
	// as a directory's name is); empty means Dir's base name.
	Name string
}

// LoadWith is Load with options.
func LoadWith(paths []string, stdin io.Reader, o LoadOptions) (*Manifests, Diagnostics) {
	l := &loader{
		secretsOptional: o.SecretsOptional,
		stdin:           stdin,
		lookupEnv:       os.LookupEnv,
		fileOrder:       map[string]int{},
		seen:            map[string]bool{},
		digest:          sha256.New(),
	}
	return l.load(paths)
}

// LoadFS reads manifests from a file system, such as a git commit's tree, as Load reads them from disk:
// paths are slash-separated paths inside fsys ("." is all of it; no paths means "."), directories are
// read recursively in sorted order, and every diagnostic names a file by its path inside fsys
// (file:line:col). Nothing outside fsys is read but what secret references name (see LoadOptions.Dir).
func LoadFS(fsys fs.FS, paths []string, o LoadOptions) (*Manifests, Diagnostics) {
	dir := o.Dir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	l := &loader{
		secretsOptional: o.SecretsOptional,
		lookupEnv:       os.LookupEnv,
		fileOrder:       map[string]int{},
		seen:            map[string]bool{},
		digest:          sha256.New(),
		fsys:            fsys,
		fsDir:           dir,
		root:            dir,
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	for _, p := range paths {
		l.loadFSPath(path.Clean(p))
	}
	m := l.build()
	if o.Name != "" && (m.Fleet == nil || m.Fleet.Metadata.Name == "") {
		m.Name = labelFrom(o.Name)
	}
	sortDiagnostics(l.diags, l.fileOrder)
	return m, capPerFile(l.diags)
}

// loadFSPath reads one file or directory of the loader's file system.
func (l *loader) loadFSPath(p string) {
	info, err := fs.Stat(l.fsys, p)
	if err != nil || !fs.ValidPath(p) {
		if err == nil {
			err = fs.ErrInvalid
		}
		l.add(SeverityError, p, pos{}, "Check the path; it is a path inside the repository, such as fleet/ or fleet/app.yaml.",
			"cannot read %s: %v", p, pathErr(err))
		return
	}
	var files []string
	if info.IsDir() {
		err = fs.WalkDir(l.fsys, p, func(name string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				l.add(SeverityError, name, pos{}, "", "cannot read %s: %v", name, pathErr(err))
			case d.IsDir():
				if name != p && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
			case d.Type().IsRegular() && (path.Ext(name) == ".yaml" || path.Ext(name) == ".yml"):
				files = append(files, name)
			}
			return nil
		})
		if err != nil {
			l.add(SeverityError, p, pos{}, "", "cannot read %s: %v", p, err)
			return
		}
		if len(files) == 0 {
			l.add(SeverityError, p, pos{}, "Manifests are files ending in .yaml or .yml; hidden directories are skipped.",
				"no manifest files in %s", p)
			return
		}
	} else {
		files = []string{p}
	}
	for _, name := range files {
		if l.seen[name] {
			continue
		}
		l.seen[name] = true
		f, err := l.fsys.Open(name)
		if err != nil {
			l.add(SeverityError, name, pos{}, "", "cannot read %s: %v", name, pathErr(err))
			continue
		}
		l.readFrom(name, name, filepath.Join(l.fsDir, filepath.FromSlash(path.Dir(name))), f)
		_ = f.Close()
	}
}

type loader struct {
	secretsOptional bool
	fsys            fs.FS  // LoadFS: the file system read instead of the disk
	fsDir           string // LoadFS: the directory on disk fsys stands for
	stdin           io.Reader
	lookupEnv       func(string) (string, bool)

	diags        Diagnostics
	fileOrder    map[string]int  // display path -> load order
	seen         map[string]bool // absolute paths already read
	digest       hash.Hash
	root         string
	docs         []*document
	syntaxErrors bool // some file did not parse: documents may be missing
	stdinRead    bool
}

// document is one decoded manifest and where its values are.
type document struct {
	file  string // as diagnostics show it
	dir   string // absolute directory that relative paths in it are resolved against
	kind  Kind
	what  string // `App "crm"`
	pos   map[string]pos
	typos map[string]bool // fields that an unknown field already reported was probably meant to be
	bad   map[string]bool // values that could not be decoded, already reported
	value any             // *Fleet, *Environment, *App or *AppSet
	gen   *generated      // for an app an AppSet generated: which one and from which element; else nil
}

// at returns the position of path in the document, or of its closest ancestor that has one.
func (d *document) at(path string) pos {
	for {
		if p, ok := d.pos[path]; ok {
			return p
		}
		if path == "" {
			return pos{1, 1}
		}
		path = parentPath(path)
	}
}

// keyAt returns the position of the key that holds path's value, else that of the value (see at).
func (d *document) keyAt(path string) pos {
	if p, ok := d.pos[path+keySuffix]; ok {
		return p
	}
	return d.at(path)
}

// parentPath drops the last element of a path: "a.b[0]" -> "a.b" -> "a" -> "".
func parentPath(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

func (l *loader) add(severity, file string, p pos, detail, format string, args ...any) {
	l.diags = append(l.diags, Diagnostic{
		Severity: severity, Summary: fmt.Sprintf(format, args...), Detail: detail,
		File: file, Line: p.line, Column: p.col,
	})
}

func (l *loader) load(paths []string) (*Manifests, Diagnostics) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	cwd, _ := os.Getwd()
	for i, p := range paths {
		l.loadPath(p, cwd, i == 0)
	}
	if l.root == "" {
		l.root = cwd
	}
	m := l.build()
	sortDiagnostics(l.diags, l.fileOrder)
	return m, capPerFile(l.diags)
}

// capPerFile keeps the first maxDiagsPerFile diagnostics of each file and says how many it dropped.
func capPerFile(diags Diagnostics) Diagnostics {
	out := diags[:0:0]
	count := map[string]int{}
	var last Diagnostic
	for _, d := range diags {
		count[d.File]++
		switch n := count[d.File]; {
		case n <= maxDiagsPerFile:
			out = append(out, d)
			last = d
		case n == maxDiagsPerFile+1:
			out = append(out, Diagnostic{Severity: SeverityError, File: d.File, Line: last.Line, Column: last.Column,
				Summary: "too many problems in this file; the rest are not shown", Detail: "Fix the problems above and validate again."})
		}
	}
	return out
}

func (l *loader) loadPath(p, cwd string, first bool) {
	if p == "-" {
		if first {
			l.root = cwd
		}
		if l.stdinRead {
			l.add(SeverityError, StdinName, pos{}, "Pass - once.", "standard input given twice")
			return
		}
		l.stdinRead = true
		if l.stdin == nil {
			l.stdin = strings.NewReader("")
		}
		l.readFrom(StdinName, "-", cwd, l.stdin)
		return
	}
	info, err := os.Stat(p)
	if err != nil {
		l.add(SeverityError, p, pos{}, "Check the path; appfleet reads manifest files and directories of them.",
			"cannot read %s: %v", p, pathErr(err))
		return
	}
	if first {
		root := p
		if !info.IsDir() {
			root = filepath.Dir(p)
		}
		if abs, err := filepath.Abs(root); err == nil {
			l.root = abs
		}
	}
	if !info.IsDir() {
		l.readFile(p)
		return
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			l.add(SeverityError, path, pos{}, "Check the directory's permissions.", "cannot read %s: %v", path, pathErr(err))
			return nil
		}
		if d.IsDir() {
			if path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		l.add(SeverityError, p, pos{}, "Check the directory's permissions.", "cannot read %s: %v", p, err)
		return
	}
	if len(files) == 0 {
		l.add(SeverityError, p, pos{}, "Manifests are files ending in .yaml or .yml; hidden directories are skipped.",
			"no manifest files in %s", p)
		return
	}
	for _, f := range files {
		l.readFile(f)
	}
}

// pathErr drops the operation and path an *fs.PathError repeats, since the diagnostic names the path.
func pathErr(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

func (l *loader) readFile(p string) {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = p
	}
	if l.seen[abs] {
		return
	}
	l.seen[abs] = true
	f, err := os.Open(p)
	if err != nil {
		l.add(SeverityError, p, pos{}, "Check the file's permissions.", "cannot read %s: %v", p, pathErr(err))
		return
	}
	defer f.Close()
	name := filepath.ToSlash(abs)
	if rel, err := filepath.Rel(l.root, abs); err == nil {
		name = filepath.ToSlash(rel)
	}
	l.readFrom(p, name, filepath.Dir(abs), f)
}

// readFrom reads one source of manifests, at most MaxFileSize bytes of it, and decodes its documents.
// digestName is the name the digest records for it: stable wherever the fleet is checked out.
func (l *loader) readFrom(file, digestName, dir string, r io.Reader) {
	if _, ok := l.fileOrder[file]; !ok {
		l.fileOrder[file] = len(l.fileOrder)
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		l.add(SeverityError, file, pos{}, "Check that the file can be read.", "cannot read %s: %v", file, pathErr(err))
		return
	}
	if len(data) > MaxFileSize {
		l.add(SeverityError, file, pos{1, 1}, "Split the manifests into several files.",
			"file is larger than %d MiB; manifests are small text files", MaxFileSize>>20)
		return
	}
	fmt.Fprintf(l.digest, "%s\x00%d\x00", digestName, len(data))
	l.digest.Write(data)
	l.parse(file, dir, data)
}

var bom = []byte("\xef\xbb\xbf")

// parse checks the text for what YAML parsers report badly or slowly, then decodes every document.
func (l *loader) parse(file, dir string, data []byte) {
	data = bytes.TrimPrefix(data, bom)
	if i := bytes.IndexByte(data, 0); i >= 0 {
		l.add(SeverityError, file, offsetPos(data, i), "Manifests are UTF-8 text; remove the NUL byte (is this a binary or UTF-16 file?).",
			"file contains a NUL byte")
		return
	}
	if !utf8.Valid(data) {
		i := firstInvalidUTF8(data)
		l.add(SeverityError, file, offsetPos(data, i), "Save the file as UTF-8.", "file is not valid UTF-8")
		return
	}
	if i, r := firstUnprintable(data); i >= 0 {
		l.add(SeverityError, file, offsetPos(data, i), "YAML text may not hold control characters; remove it, or write it as an escape such as \"\\t\" inside double quotes.",
			"file contains the control character %U", r)
		return
	}
	if n := countItems(data); n > maxItemsPerFile {
		l.add(SeverityError, file, pos{1, 1}, "Split the manifests into several files.",
			"file holds more than %d YAML items; manifests are small text files", maxItemsPerFile)
		return
	}
	budget := maxNodesPerFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := decodeSafely(dec, &doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			l.syntaxErrors = true
			l.syntaxError(file, data, err)
			return
		}
		if !l.document(file, dir, &doc, &budget) {
			return
		}
	}
}

// decodeSafely turns a panic of the YAML parser into an error.
func decodeSafely(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse: %v", r)
		}
	}()
	return dec.Decode(n)
}

// countItems is a cheap upper-bound estimate of the nodes a YAML text holds, used to refuse texts
// that would take long to parse before parsing them.
func countItems(data []byte) int {
	n := 0
	for i, c := range data {
		switch c {
		case ',', '\n', '[', '{', '*', '&', '!':
			n++
		case '-', ':', '?':
			if i+1 == len(data) || data[i+1] == ' ' || data[i+1] == '\n' || data[i+1] == '\r' {
				n++
			}
		}
	}
	return n
}

func offsetPos(data []byte, off int) pos {
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return pos{line, 1 + utf8.RuneCount(data[start:off])}
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return 0
}

// firstUnprintable returns the offset and value of the first character YAML does not allow in a
// stream (a C0 or C1 control other than tab and line breaks, a surrogate, U+FFFE or U+FFFF), or -1.
func firstUnprintable(data []byte) (int, rune) {
	for i, r := range string(data) {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return i, r
		case r == 0xfffe || r == 0xffff:
			return i, r
		}
	}
	return -1, 0
}

var (
	yamlLineErr   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchorErr = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// syntaxError turns a YAML parser error into a diagnostic with the best position the text allows.
func (l *loader) syntaxError(file string, data []byte, err error) {
	msg := err.Error()
	p := pos{1, 1}
	detail := "Check the indentation and quoting here; a value that holds \": \" or starts with a special character needs quotes."
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		msg = m[2]
		if strings.HasPrefix(msg, "did not find expected") {
			// The parser (unlike the scanner) reports the 0-based line where the construct it could not
			// finish begins, which may be far above the line that is wrong: find that line.
			line = wrongLine(data, msg, line+1)
		}
		if h, ok := syntaxHints[msg]; ok {
			detail = h
		}
		text := lineText(data, line)
		p = pos{line, 1 + len(text) - len(strings.TrimLeft(text, " \t"))}
		if i := strings.IndexByte(text[:p.col-1], '\t'); i >= 0 {
			l.add(SeverityError, file, pos{line, i + 1}, "YAML indents with spaces only; replace the tab with spaces.",
				"tab character used for indentation")
			return
		}
	} else if m := yamlAnchorErr.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			p = offsetPos(data, i)
		}
		msg = fmt.Sprintf("unknown anchor %q", m[1])
		detail = "Define the anchor (&name) before the alias (*name) that repeats it."
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	l.add(SeverityError, file, p, detail, "invalid YAML: %s", msg)
}

// wrongLine finds the line that makes a YAML text fail with the parser's message msg, given the line
// from where the construct it could not finish begins: the first line whose text, read up to and with
// it, fails the same way. It costs a few parses (a binary search), and only on the way to an error.
func wrongLine(data []byte, msg string, from int) int {
	ends := []int{} // ends[i] is the offset just past line i+1
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	fails := func(line int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(data[:ends[line-1]]))
		for {
			var n yaml.Node
			err := decodeSafely(dec, &n)
			if err == nil {
				continue
			}
			m := yamlLineErr.FindStringSubmatch(err.Error())
			return m != nil && m[2] == msg
		}
	}
	lo, hi := max(from, 1), len(ends)
	if lo > hi || !fails(hi) {
		return min(from, len(ends))
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// syntaxHints are better hints for the YAML parser's commonest complaints.
var syntaxHints = map[string]string{
	"did not find expected ',' or '}'":                       "The { that opens a mapping here has no matching }.",
	"did not find expected ',' or ']'":                       "The [ that opens a list here has no matching ].",
	"did not find expected key":                              "Check the indentation here and just below: the keys of a mapping all start in one column.",
	"did not find expected '-' indicator":                    "Check the indentation here and just below: the items of a list all start in one column.",
	"mapping values are not allowed in this context":         "A value that holds \": \" needs quotes, or a key is indented too far.",
	"could not find expected ':'":                            "A key here has no ':' after it, or a quoted value is not closed.",
	"found character that cannot start any token":            "Quote the value: it starts with a character YAML reserves (such as @ or `).",
	"did not find expected node content":                     "A value is missing here.",
	"found unexpected end of stream":                         "A quoted value or a bracket is not closed.",
	"did not find expected <document start>":                 "Each document is a mapping; check the indentation of the first lines.",
	"block sequence entries are not allowed in this context": "A list item (- ) is indented wrongly, or follows a value on the same key.",
}

// lineText returns line n (1-based) of data without its line ending.
func lineText(data []byte, n int) string {
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(data, '\n')
		if j < 0 {
			return ""
		}
		data = data[j+1:]
	}
	if j := bytes.IndexByte(data, '\n'); j >= 0 {
		data = data[:j]
	}
	return strings.TrimRight(string(data), "\r")
}

var kinds = []string{string(KindFleet), string(KindEnvironment), string(KindApp), string(KindAppSet)}

// document decodes one YAML document; it reports false when the file's budget is spent.
func (l *loader) document(file, dir string, doc *yaml.Node, budget *int) bool {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return true
	}
	root := doc.Content[0]
	if isNull(root) {
		return true // an empty document, as between two "---"
	}
	rootPos := pos{root.Line, root.Column}
	if root.Kind != yaml.MappingNode {
		l.add(SeverityError, file, rootPos, "Each document is a mapping with apiVersion, kind, metadata and spec.",
			"invalid document: want a mapping, found %s", describe(root))
		return true
	}
	kindNode, name := peek(root)
	if kindNode == nil {
		l.add(SeverityError, file, rootPos, "Add a kind: App, AppSet, Environment or Fleet.", "missing kind in document")
		return true
	}
	kind := Kind(kindNode.Value)
	var value any
	switch kind {
	case KindFleet:
		value = &Fleet{}
	case KindEnvironment:
		value = &Environment{}
	case KindApp:
		value = &App{}
	case KindAppSet:
		value = &AppSet{}
	default:
		l.add(SeverityError, file, pos{kindNode.Line, kindNode.Column}, "The kinds are App, AppSet, Environment and Fleet.",
			"unknown kind %q%s", kindNode.Value, didYouMean(kindNode.Value, kinds))
		return true
	}
	what := string(kind)
	if name != "" {
		what = fmt.Sprintf("%s %q", kind, truncate(name, 63))
	}
	d := &decoder{
		file: file, what: what, pos: map[string]pos{}, budget: *budget,
		expanding: map[*yaml.Node]bool{}, typos: map[string]bool{}, bad: map[string]bool{}, diags: &l.diags,
	}
	d.decode(root, reflect.ValueOf(value).Elem(), "")
	*budget = d.budget
	src := Source{File: file, Line: root.Line, Column: root.Column, Dir: dir}
	switch v := value.(type) {
	case *Fleet:
		v.Source = src
	case *Environment:
		v.Source = src
	case *App:
		v.Source = src
	case *AppSet:
		v.Source = src
	}
	l.docs = append(l.docs, &document{file: file, dir: dir, kind: kind, what: what, pos: d.pos, typos: d.typos, bad: d.bad, value: value})
	return !d.exhausted
}

// peek finds a document's kind node and name before it is decoded, to name it in messages.
func peek(root *yaml.Node) (kind *yaml.Node, name string) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "kind":
			if v.Kind == yaml.ScalarNode && !isNull(v) {
				kind = v
			}
		case "metadata":
			if v.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				if v.Content[j].Value == "name" && v.Content[j+1].Kind == yaml.ScalarNode {
					name = v.Content[j+1].Value
				}
			}
		}
	}
	return kind, name
}

// build gathers the decoded documents into Manifests, expands AppSets, reports duplicates, applies
// defaults and validates.
func (l *loader) build() *Manifests {
	m := &Manifests{Root: l.root, Digest: hex.EncodeToString(l.digest.Sum(nil))}
	var (
		fleetDoc *document
		envs     []entry[Environment]
		apps     []entry[App]
		sets     []entry[AppSet]
		first    = map[string]*document{}
	)
	for _, doc := range l.docs {
		var name string
		switch v := doc.value.(type) {
		case *Fleet:
			if fleetDoc != nil {
				l.add(SeverityError, doc.file, doc.at(""), fmt.Sprintf("The first is at %s; a fleet has at most one Fleet document.", fleetDoc.position("")),
					"more than one Fleet document")
				continue
			}
			fleetDoc = doc
			f := *v
			m.Fleet = &f
			continue
		case *Environment:
			name = v.Metadata.Name
		case *App:
			name = v.Metadata.Name
		case *AppSet:
			name = v.Metadata.Name
		}
		key := string(doc.kind) + "/" + name
		if prev, dup := first[key]; dup && name != "" {
			l.add(SeverityError, doc.file, doc.at("metadata.name"),
				fmt.Sprintf("It is first declared at %s; %s names are unique within a fleet.", prev.position("metadata.name"), strings.ToLower(string(doc.kind))),
				"duplicate %s", doc.what)
			continue
		}
		first[key] = doc
		switch v := doc.value.(type) {
		case *Environment:
			envs = append(envs, entry[Environment]{*v, doc})
		case *App:
			apps = append(apps, entry[App]{*v, doc})
		case *AppSet:
			sets = append(sets, entry[AppSet]{*v, doc})
		}
	}
	// Generated apps come after every written one, so that a clash is reported at the generated app.
	for _, s := range sets {
		for _, g := range l.expand(s.doc, &s.v) {
			name := g.v.Metadata.Name
			key := string(KindApp) + "/" + name
			if prev, dup := first[key]; dup && name != "" {
				l.add(SeverityError, g.doc.file, g.doc.gen.at,
					fmt.Sprintf("It is also %s. App names are unique within a fleet; change the template's name or the element.", prev.place()),
					"duplicate App %q: %s generates it from %s", name, g.doc.what, g.doc.gen.element)
				continue
			}
			first[key] = g.doc
			apps = append(apps, g)
		}
	}
	slices.SortStableFunc(envs, func(a, b entry[Environment]) int { return strings.Compare(a.v.Metadata.Name, b.v.Metadata.Name) })
	slices.SortStableFunc(apps, func(a, b entry[App]) int { return strings.Compare(a.v.Metadata.Name, b.v.Metadata.Name) })
	slices.SortStableFunc(sets, func(a, b entry[AppSet]) int { return strings.Compare(a.v.Metadata.Name, b.v.Metadata.Name) })
	for _, e := range envs {
		m.Environments = append(m.Environments, e.v)
	}
	m.Apps = make([]App, 0, len(apps))
	for _, a := range apps {
		m.Apps = append(m.Apps, a.v)
	}
	for _, s := range sets {
		m.AppSets = append(m.AppSets, s.v)
	}
	m.Name = fleetName(m.Fleet, l.root)

	applyDefaults(m)

	v := &validator{l: l, m: m, fleetDoc: fleetDoc}
	for _, e := range envs {
		v.envDocs = append(v.envDocs, e.doc)
	}
	for _, a := range apps {
		v.appDocs = append(v.appDocs, a.doc)
	}
	for _, s := range sets {
		v.setDocs = append(v.setDocs, s.doc)
	}
	v.run()
	// The AppSet label is set after validation, which refuses labels under the reserved prefix.
	for i, a := range apps {
		if a.doc.gen != nil {
			labels := make(map[string]string, len(a.v.Metadata.Labels)+1)
			maps.Copy(labels, a.v.Metadata.Labels)
			labels[LabelAppSet] = a.doc.gen.set
			m.Apps[i].Metadata.Labels = labels
		}
	}
	m.dirs = map[string]string{}
	for _, doc := range l.docs {
		m.dirs[doc.file] = doc.dir
	}
	return m
}

// place says where an app's document names it: "declared at crm.yaml:4:9", or for a generated app
// `generated by AppSet "tenants" from generators[0].list[3] at tenants.yaml:12:9`.
func (d *document) place() string {
	if d.gen != nil {
		return fmt.Sprintf("generated by %s from %s at %s:%d:%d", d.what, d.gen.element, d.file, d.gen.at.line, d.gen.at.col)
	}
	return "declared at " + d.position("metadata.name")
}

type entry[T any] struct {
	v   T
	doc *document
}

func (d *document) position(path string) string {
	p := d.at(path)
	return fmt.Sprintf("%s:%d:%d", d.file, p.line, p.col)
}

// fleetName is the Fleet document's name, else the root directory's base name made into a DNS label.
func fleetName(f *Fleet, root string) string {
	if f != nil && f.Metadata.Name != "" {
		return f.Metadata.Name
	}
	return labelFrom(filepath.Base(root))
}

// labelFrom turns any text into a DNS label: lowercase, other characters as "-", at most 63 long.
// It returns "fleet" when nothing usable is left.
func labelFrom(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.TrimLeft(b.String(), "-0123456789")
	if len(out) > 63 {
		out = out[:63]
	}
	out = strings.TrimRight(out, "-")
	if out == "" {
		return "fleet"
	}
	return out
}
