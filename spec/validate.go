package spec

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	dnsLabel      = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	identifier    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)
	envVarName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	keyName       = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`)
	labelName     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`)
	labelPrefix   = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)
	hostnameLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// ReservedLabelPrefix is the label key prefix appfleet keeps for itself (fleet ownership and the like).
const ReservedLabelPrefix = "appfleet.dev/"

const (
	hintName       = "Names are DNS labels: lowercase letters, digits and '-', starting with a letter, ending with a letter or digit, at most 63 characters."
	hintIdentifier = "Use letters, digits and '_', starting with a letter, at most 63 characters."
	maxParallelism = 1000
)

// IsDNSLabel reports whether s is a valid name for a fleet, environment or app.
func IsDNSLabel(s string) bool { return dnsLabel.MatchString(s) }

// validator checks decoded, defaulted manifests. envDocs and appDocs are index-aligned with
// m.Environments and m.Apps, and give each one's positions.
type validator struct {
	l        *loader
	m        *Manifests
	fleetDoc *document
	envDocs  []*document
	appDocs  []*document
}

// errorf reports a problem at path, unless the value there (or one holding it) could not be decoded
// and was reported already.
func (v *validator) errorf(doc *document, path, detail, format string, args ...any) {
	for p := path; ; p = parentPath(p) {
		if doc.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	v.l.add(SeverityError, doc.file, doc.at(path), detail, format, args...)
}

// missingf reports a missing field unless an unknown field close to its name was already reported:
// "unknown field "enviroment"; did you mean "environment"?" says all there is to say.
func (v *validator) missingf(doc *document, field, at, detail, format string, args ...any) {
	for f := field; f != ""; f = parentPath(f) {
		if doc.typos[f] {
			return
		}
	}
	v.errorf(doc, at, detail, format, args...)
}

// unavailable reports a secret that cannot be read now: an error, unless the command that loads the
// manifests does not send secrets anywhere (LoadOptions.SecretsOptional), where it is a warning.
func (v *validator) unavailable(doc *document, path, detail, format string, args ...any) {
	if v.l.secretsOptional {
		v.warnf(doc, path, detail+" This command does not need the value.", format, args...)
		return
	}
	v.errorf(doc, path, detail, format, args...)
}

func (v *validator) warnf(doc *document, path, detail, format string, args ...any) {
	v.l.add(SeverityWarning, doc.file, doc.at(path), detail, format, args...)
}

func (v *validator) run() {
	if f := v.m.Fleet; f != nil {
		v.header(v.fleetDoc, f.APIVersion, f.Metadata)
		v.fleet(v.fleetDoc, f)
	}
	for i := range v.m.Environments {
		e := &v.m.Environments[i]
		v.header(v.envDocs[i], e.APIVersion, e.Metadata)
		v.environment(v.envDocs[i], e)
	}
	v.listenConflicts()
	for i := range v.m.Apps {
		a := &v.m.Apps[i]
		v.header(v.appDocs[i], a.APIVersion, a.Metadata)
		v.app(v.appDocs[i], a)
	}
	v.hostnameConflicts()
	v.capacity()
}

// header checks what every kind has: apiVersion and metadata.
func (v *validator) header(doc *document, apiVersion string, md Metadata) {
	switch {
	case apiVersion == "":
		v.missingf(doc, "apiVersion", "", "Add \"apiVersion: "+APIVersion+"\".", "missing apiVersion in %s", doc.what)
	case apiVersion != APIVersion:
		v.errorf(doc, "apiVersion", "This release reads apiVersion "+APIVersion+".", "unsupported apiVersion %q in %s", apiVersion, doc.what)
	}
	switch {
	case md.Name == "":
		v.missingf(doc, "metadata.name", "metadata", "Give the document a name under metadata.", "missing metadata.name in %s", doc.what)
	case !IsDNSLabel(md.Name):
		v.errorf(doc, "metadata.name", hintName, "invalid %s name %q", doc.kind, truncate(md.Name, 80))
	}
	for _, k := range sortedKeys(md.Labels) {
		path := "metadata.labels." + k
		if p := labelKeyProblem(k); p != "" {
			v.errorf(doc, path, "Label keys are an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.'.",
				"invalid label key %q in %s: %s", truncate(k, 80), doc.what, p)
			continue
		}
		if strings.HasPrefix(k, ReservedLabelPrefix) {
			v.errorf(doc, path, "appfleet sets labels under "+ReservedLabelPrefix+" itself; choose another prefix.",
				"label %q in %s uses the reserved prefix %s", k, doc.what, ReservedLabelPrefix)
		}
		if val := md.Labels[k]; val != "" && !labelName.MatchString(val) {
			v.errorf(doc, path, "Label values are up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit.",
				"invalid value of label %q in %s", k, doc.what)
		}
	}
}

func labelKeyProblem(k string) string {
	prefix, name, found := strings.Cut(k, "/")
	if !found {
		prefix, name = "", k
	}
	switch {
	case found && !labelPrefix.MatchString(prefix):
		return "the prefix is not a DNS name"
	case !labelName.MatchString(name):
		return "the name is not valid"
	}
	return ""
}

func (v *validator) fleet(doc *document, f *Fleet) {
	if p := f.Spec.Parallelism; p < 1 || p > maxParallelism {
		v.errorf(doc, "spec.parallelism", fmt.Sprintf("Set a number from 1 to %d, or leave it out for %d.", maxParallelism, DefaultParallelism),
			"invalid spec.parallelism %d in %s", p, doc.what)
	}
}

var providers = []string{ProviderLocal, ProviderDocker, ProviderTerraform}

func (v *validator) environment(doc *document, e *Environment) {
	s := &e.Spec
	switch s.Provider {
	case "":
		v.missingf(doc, "spec.provider", "spec", "Set spec.provider to local, docker or terraform.", "missing spec.provider in %s", doc.what)
	case ProviderLocal, ProviderDocker, ProviderTerraform:
	default:
		v.errorf(doc, "spec.provider", "The providers are local, docker and terraform.",
			"unknown provider %q in %s%s", s.Provider, doc.what, didYouMean(s.Provider, providers))
	}
	blocks := []struct {
		name string
		set  bool
	}{{ProviderLocal, s.Local != nil}, {ProviderDocker, s.Docker != nil}, {ProviderTerraform, s.Terraform != nil}}
	for _, b := range blocks {
		if b.set && b.name != s.Provider && slices.Contains(providers, s.Provider) {
			v.errorf(doc, "spec."+b.name, fmt.Sprintf("Remove spec.%s, or set provider: %s; only the block of the provider in use may be set.", b.name, b.name),
				"spec.%s is set but %s uses provider %q", b.name, doc.what, s.Provider)
		}
	}
	switch s.Provider {
	case ProviderLocal:
		if s.Local != nil && s.Local.Listen != "" {
			v.listen(doc, "spec.local.listen", s.Local.Listen)
		}
	case ProviderDocker:
		if s.Docker != nil {
			v.docker(doc, s.Docker)
		}
	case ProviderTerraform:
		v.terraform(doc, s.Terraform)
	}
	rt := s.Runtime
	if rt.MaxApps < 1 {
		v.errorf(doc, "spec.runtime.maxApps", fmt.Sprintf("Set a positive number, or leave it out for %d.", DefaultMaxApps),
			"invalid spec.runtime.maxApps %d in %s", rt.MaxApps, doc.what)
	}
	if rt.IdleTimeout.Duration < time.Second {
		v.errorf(doc, "spec.runtime.idleTimeout", "Set at least \"1s\", or leave it out for \"10m\".",
			"spec.runtime.idleTimeout %s in %s is too short", rt.IdleTimeout, doc.what)
	}
	if rt.Token != nil {
		v.secret(doc, "spec.runtime.token", "runtime.token", *rt.Token)
	}
}

// listen checks a host:port the runtime's management API listens on.
func (v *validator) listen(doc *document, path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(doc, path, "Write host:port, such as 127.0.0.1:7410; leave listen out for a free loopback port.",
			"invalid %s %q in %s: %v", path, truncate(addr, 80), doc.what, unwrapAddrErr(err))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.errorf(doc, path, "Use a port from 1 to 65535; leave listen out for a free loopback port.",
			"invalid port %q in %s of %s", port, path, doc.what)
		return
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			v.errorf(doc, path, "Write an IP address or localhost before the port.", "invalid host %q in %s of %s", host, path, doc.what)
			return
		}
	}
	if !isLoopback(host) {
		v.warnf(doc, path, "The management API holds every app's secrets; listen on 127.0.0.1 unless other machines must reach it.",
			"%s of %s listens beyond this machine", path, doc.what)
	}
}

func unwrapAddrErr(err error) string {
	if ae, ok := err.(*net.AddrError); ok {
		return ae.Err
	}
	return err.Error()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// listenConflicts reports local environments that would listen on one address.
func (v *validator) listenConflicts() {
	type bound struct {
		host, port string
		i          int
	}
	var seen []bound
	for i, e := range v.m.Environments {
		if e.Spec.Provider != ProviderLocal || e.Spec.Local == nil || e.Spec.Local.Listen == "" {
			continue
		}
		host, port, err := net.SplitHostPort(e.Spec.Local.Listen)
		if err != nil {
			continue
		}
		for _, b := range seen {
			if b.port == port && hostsOverlap(b.host, host) {
				other := v.envDocs[b.i]
				v.errorf(v.envDocs[i], "spec.local.listen", fmt.Sprintf("%s listens there too (%s); give each local environment its own port, or leave listen out.", other.what, other.position("spec.local.listen")),
					"%s and %s both listen on %s", v.envDocs[i].what, other.what, e.Spec.Local.Listen)
				break
			}
		}
		seen = append(seen, bound{host, port, i})
	}
}

// hostsOverlap reports whether two listen hosts can clash on one port: equal, or one of them every address.
func hostsOverlap(a, b string) bool {
	norm := func(h string) string {
		if h == "localhost" {
			return "127.0.0.1"
		}
		if ip, err := netip.ParseAddr(h); err == nil {
			if ip.IsUnspecified() {
				return ""
			}
			return ip.Unmap().String()
		}
		return h
	}
	a, b = norm(a), norm(b)
	return a == b || a == "" || b == ""
}

var dockerSchemes = []string{"unix", "tcp", "ssh", "npipe", "http", "https"}

func (v *validator) docker(doc *document, d *DockerSpec) {
	if d.Host != "" {
		scheme, _, ok := strings.Cut(d.Host, "://")
		if !ok || !slices.Contains(dockerSchemes, scheme) {
			v.errorf(doc, "spec.docker.host", "Write a Docker host URL such as unix:///var/run/docker.sock, tcp://10.0.0.5:2376 or ssh://user@host; leave it out for DOCKER_HOST or the local socket.",
				"invalid spec.docker.host %q in %s", truncate(d.Host, 80), doc.what)
		}
	}
	if d.TLS != nil {
		v.dockerTLS(doc, d)
	}
	if d.Publish != "" {
		if _, _, err := d.PublishAddr(); err != nil {
			v.errorf(doc, "spec.docker.publish", "Write host:port such as 127.0.0.1:7410, or a port.",
				"invalid spec.docker.publish %q in %s: %v", truncate(d.Publish, 80), doc.what, err)
		}
	}
	if d.Memory != "" {
		if _, err := d.MemoryBytes(); err != nil {
			v.errorf(doc, "spec.docker.memory", "Write a size such as 512Mi, 1Gi or 768m.",
				"invalid spec.docker.memory %q in %s: %v", truncate(d.Memory, 80), doc.what, err)
		}
	}
	if d.CPUs != "" {
		if _, err := d.NanoCPUs(); err != nil {
			v.errorf(doc, "spec.docker.cpus", "Write a number of CPUs such as \"1\" or \"0.5\".",
				"invalid spec.docker.cpus %q in %s: %v", truncate(d.CPUs, 80), doc.what, err)
		}
	}
}

// dockerTLS checks that the TLS files of a tcp:// Docker host are there to read.
func (v *validator) dockerTLS(doc *document, d *DockerSpec) {
	if !strings.HasPrefix(d.Host, "tcp://") && !strings.HasPrefix(d.Host, "https://") {
		v.errorf(doc, "spec.docker.tls", "TLS files are for a tcp:// host; set spec.docker.host to tcp://HOST:2376, or remove spec.docker.tls.",
			"spec.docker.tls is set but %s has no tcp:// docker host", doc.what)
		return
	}
	files := []struct{ field, path string }{{"ca", d.TLS.CA}, {"cert", d.TLS.Cert}, {"key", d.TLS.Key}}
	if d.TLS.Cert == "" && d.TLS.Key == "" && d.TLS.CA == "" {
		v.errorf(doc, "spec.docker.tls", "Name the PEM files: {ca: ca.pem, cert: cert.pem, key: key.pem}.", "spec.docker.tls of %s names no file", doc.what)
		return
	}
	if (d.TLS.Cert == "") != (d.TLS.Key == "") {
		v.errorf(doc, "spec.docker.tls", "A client certificate needs its key: set both cert and key, or neither.",
			"spec.docker.tls of %s sets only one of cert and key", doc.what)
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		path := "spec.docker.tls." + f.field
		st, err := os.Stat(d.TLS.Path(f.path, doc.dir))
		switch {
		case err != nil:
			v.errorf(doc, path, "A relative path is relative to the manifest's directory.",
				"cannot read TLS file %s (spec.docker.tls.%s of %s): %v", f.path, f.field, doc.what, pathErr(err))
		case !st.Mode().IsRegular():
			v.errorf(doc, path, "Point it at a PEM file.", "TLS file %s (spec.docker.tls.%s of %s) is not a regular file", f.path, f.field, doc.what)
		}
	}
}

func (v *validator) terraform(doc *document, t *TerraformSpec) {
	if t == nil || t.Module == "" {
		v.missingf(doc, "spec.terraform.module", "spec", "Set spec.terraform.module to the directory of the Terraform module that starts the runtime.",
			"missing spec.terraform.module in %s", doc.what)
		return
	}
	if !IsLocalModule(t.Module) {
		return
	}
	dir := SecretRef{FromFile: t.Module}.Path(doc.dir)
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		v.errorf(doc, "spec.terraform.module", "A relative module path is relative to the manifest's directory.",
			"terraform module %s of %s cannot be read: %v", t.Module, doc.what, pathErr(err))
	case !st.IsDir():
		v.errorf(doc, "spec.terraform.module", "Point module at the directory that holds the module's .tf files.",
			"terraform module %s of %s is not a directory", t.Module, doc.what)
	}
}

// IsLocalModule reports whether a Terraform module source is a local directory (Terraform's own rule:
// it starts with ./ or ../, or is absolute).
func IsLocalModule(src string) bool {
	return strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") || strings.HasPrefix(src, "/") || src == "." || src == ".."
}

var (
	states     = []string{StateRunning, StateStopped}
	drivers    = []string{DriverSQLite, DriverPostgres}
	isolations = []string{IsolationDatabase, IsolationSchema}
)

func (v *validator) app(doc *document, a *App) {
	s := &a.Spec
	switch {
	case s.Environment == "":
		v.missingf(doc, "spec.environment", "spec", "Set spec.environment to the name of the environment the app runs in.", "missing spec.environment in %s", doc.what)
	case !v.l.syntaxErrors:
		if _, ok := v.m.Environment(s.Environment); !ok {
			names := make([]string, len(v.m.Environments))
			for i, e := range v.m.Environments {
				names[i] = e.Metadata.Name
			}
			hint := "No Environment document is declared; add one."
			if len(names) > 0 {
				hint = "The declared environments are " + quoteList(names, "and") + "."
			}
			v.errorf(doc, "spec.environment", hint, "environment %q of %s is not declared%s", s.Environment, doc.what, didYouMean(s.Environment, names))
		}
	}
	if !slices.Contains(states, s.State) {
		v.errorf(doc, "spec.state", "The states are running and stopped.", "unknown state %q in %s%s", s.State, doc.what, didYouMean(s.State, states))
	}
	v.database(doc, &s.Database)
	seenHost := map[string]int{}
	for i, h := range s.Hostnames {
		path := fmt.Sprintf("spec.hostnames[%d]", i)
		if !isHostname(h) {
			v.errorf(doc, path, "Write a lowercase DNS name such as crm.example.com, without scheme or port.", "invalid hostname %q in %s", truncate(h, 80), doc.what)
			continue
		}
		if j, dup := seenHost[h]; dup {
			v.errorf(doc, path, fmt.Sprintf("It is already listed at spec.hostnames[%d]; remove one.", j), "duplicate hostname %q in %s", h, doc.what)
			continue
		}
		seenHost[h] = i
	}
	seenKey := map[string]int{}
	for i, k := range s.APIKeys {
		path := fmt.Sprintf("spec.apiKeys[%d]", i)
		switch {
		case k.Name == "":
			v.missingf(doc, path+".name", path, "Give every API key a name, such as frontend.", "missing name of %s in %s", path, doc.what)
		case !keyName.MatchString(k.Name):
			v.errorf(doc, path+".name", "Use letters, digits, '-', '_' or '.', at most 63 characters.", "invalid API key name %q in %s", truncate(k.Name, 80), doc.what)
		default:
			if j, dup := seenKey[k.Name]; dup {
				v.errorf(doc, path+".name", fmt.Sprintf("spec.apiKeys[%d] has that name already; names of an app's keys are unique.", j), "duplicate API key %q in %s", k.Name, doc.what)
			}
			seenKey[k.Name] = i
		}
		v.secret(doc, path+".value", fmt.Sprintf("API key %q", k.Name), k.Value)
	}
	for _, k := range sortedKeys(s.Settings) {
		if k == "" || len(k) > 128 {
			v.errorf(doc, "spec.settings", "Setting names are 1 to 128 characters.", "invalid setting name %q in %s", truncate(k, 80), doc.what)
		}
	}
	if s.Limits.MaxInFlight < 0 {
		v.errorf(doc, "spec.limits.maxInFlight", "Set a positive number, or 0 (or nothing) for no limit.", "invalid spec.limits.maxInFlight %d in %s", s.Limits.MaxInFlight, doc.what)
	}
	v.collections(doc, s.Collections)
}

func isHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for l := range strings.SplitSeq(h, ".") {
		if !hostnameLabel.MatchString(l) {
			return false
		}
	}
	return true
}

func (v *validator) database(doc *document, db *Database) {
	switch db.Driver {
	case DriverSQLite:
		if db.DSN != nil {
			v.errorf(doc, "spec.database.dsn", "An sqlite database is a file in the runtime's data directory; remove dsn, or set driver: postgres.",
				"spec.database.dsn is set but %s uses sqlite", doc.what)
		}
		if db.Isolation != "" {
			v.errorf(doc, "spec.database.isolation", "Remove isolation; it applies to postgres only.",
				"spec.database.isolation is set but %s uses sqlite", doc.what)
		}
	case DriverPostgres:
		if db.DSN == nil {
			v.missingf(doc, "spec.database.dsn", "spec.database", "Set dsn: {fromEnv: NAME} with the server's connection string in that variable.",
				"missing spec.database.dsn in %s: postgres needs a server", doc.what)
		} else {
			v.secret(doc, "spec.database.dsn", "database.dsn", *db.DSN)
		}
		if !slices.Contains(isolations, db.Isolation) {
			v.errorf(doc, "spec.database.isolation", "Isolation is database (the app gets its own database) or schema (its own schema).",
				"unknown isolation %q in %s%s", db.Isolation, doc.what, didYouMean(db.Isolation, isolations))
		}
	default:
		v.errorf(doc, "spec.database.driver", "The drivers are sqlite (the default) and postgres.",
			"unknown database driver %q in %s%s", db.Driver, doc.what, didYouMean(db.Driver, drivers))
	}
}

// secret checks that a reference names exactly one source and that the source can be read now.
// It never reads the value into anything it reports.
func (v *validator) secret(doc *document, path, what string, r SecretRef) {
	switch {
	case r.FromEnv != "" && r.FromFile != "":
		v.errorf(doc, path, "A secret comes from one place: keep fromEnv or fromFile.", "secret %s of %s sets both fromEnv and fromFile", what, doc.what)
	case r.FromEnv == "" && r.FromFile == "":
		v.errorf(doc, path, "Write {fromEnv: NAME} or {fromFile: path}.", "secret %s of %s names neither fromEnv nor fromFile", what, doc.what)
	case r.FromEnv != "":
		if !envVarName.MatchString(r.FromEnv) {
			v.errorf(doc, path+".fromEnv", "Variable names are letters, digits and '_', not starting with a digit.",
				"invalid variable name %q for secret %s of %s", truncate(r.FromEnv, 80), what, doc.what)
			return
		}
		val, ok := v.l.lookupEnv(r.FromEnv)
		switch {
		case !ok:
			v.unavailable(doc, path+".fromEnv", fmt.Sprintf("Export %s before running appfleet, or read the secret from a file with fromFile.", r.FromEnv),
				"environment variable %s is not set (secret %s of %s)", r.FromEnv, what, doc.what)
		case val == "":
			v.unavailable(doc, path+".fromEnv", fmt.Sprintf("Set %s to the secret's value.", r.FromEnv),
				"environment variable %s is empty (secret %s of %s)", r.FromEnv, what, doc.what)
		}
	default:
		p := r.Path(doc.dir)
		st, err := os.Stat(p)
		switch {
		case err != nil:
			v.unavailable(doc, path+".fromFile", "A relative fromFile is relative to the manifest's directory.",
				"cannot read secret file %s (secret %s of %s): %v", r.FromFile, what, doc.what, pathErr(err))
		case !st.Mode().IsRegular():
			v.unavailable(doc, path+".fromFile", "Point fromFile at a file that holds the secret.",
				"secret file %s (secret %s of %s) is not a regular file", r.FromFile, what, doc.what)
		case st.Size() == 0:
			v.unavailable(doc, path+".fromFile", "Write the secret into the file.",
				"secret file %s (secret %s of %s) is empty", r.FromFile, what, doc.what)
		case st.Size() > MaxSecretSize:
			v.errorf(doc, path+".fromFile", fmt.Sprintf("Secrets are at most %d KiB.", MaxSecretSize>>10),
				"secret file %s (secret %s of %s) is too large", r.FromFile, what, doc.what)
		default:
			f, err := os.Open(p)
			if err != nil {
				v.unavailable(doc, path+".fromFile", "Check the file's permissions.",
					"cannot read secret file %s (secret %s of %s): %v", r.FromFile, what, doc.what, pathErr(err))
				return
			}
			f.Close()
		}
	}
}

func (v *validator) collections(doc *document, cs []Collection) {
	seen := map[string]int{}
	for i, c := range cs {
		path := fmt.Sprintf("spec.collections[%d]", i)
		switch {
		case c.Name == "":
			v.missingf(doc, path+".name", path, "Give every collection a name, such as customers.", "missing name of %s in %s", path, doc.what)
		case !identifier.MatchString(c.Name):
			v.errorf(doc, path+".name", hintIdentifier, "invalid collection name %q in %s", truncate(c.Name, 80), doc.what)
		default:
			low := strings.ToLower(c.Name)
			if j, dup := seen[low]; dup {
				v.errorf(doc, path+".name", fmt.Sprintf("spec.collections[%d] is named %q; collection names are unique, ignoring case.", j, cs[j].Name),
					"duplicate collection %q in %s", c.Name, doc.what)
			}
			seen[low] = i
		}
		v.fields(doc, path, c)
	}
}

func (v *validator) fields(doc *document, cpath string, c Collection) {
	seen := map[string]int{}
	of := fmt.Sprintf("collection %q of %s", c.Name, doc.what)
	for i, f := range c.Fields {
		path := fmt.Sprintf("%s.fields[%d]", cpath, i)
		switch {
		case f.Name == "":
			v.missingf(doc, path+".name", path, "Give every field a name.", "missing name of %s in %s", path, doc.what)
		case !identifier.MatchString(f.Name):
			v.errorf(doc, path+".name", hintIdentifier, "invalid field name %q in %s", truncate(f.Name, 80), of)
		case slices.ContainsFunc(ReservedFieldNames, func(r string) bool { return strings.EqualFold(r, f.Name) }):
			v.errorf(doc, path+".name", "Every collection has id, createdAt and updatedAt already; choose another name.",
				"field name %q is reserved in %s", f.Name, of)
		default:
			low := strings.ToLower(f.Name)
			if j, dup := seen[low]; dup {
				v.errorf(doc, path+".name", fmt.Sprintf("%s.fields[%d] is named %q; field names are unique, ignoring case.", cpath, j, c.Fields[j].Name),
					"duplicate field %q in %s", f.Name, of)
			}
			seen[low] = i
		}
		if f.Type == "" {
			v.missingf(doc, path+".type", path, "Set type to one of "+quoteList(FieldTypes, "or")+".", "missing type of field %q in %s", f.Name, of)
			continue
		}
		if !slices.Contains(FieldTypes, f.Type) {
			v.errorf(doc, path+".type", "The field types are "+quoteList(FieldTypes, "and")+".",
				"unknown type %q of field %q in %s%s", f.Type, f.Name, of, didYouMean(f.Type, FieldTypes))
			continue
		}
		if f.Type == TypeEnum {
			if len(f.Values) == 0 {
				v.errorf(doc, path, "List the allowed values, such as values: [free, pro].", "enum field %q in %s has no values", f.Name, of)
			}
			seenVal := map[string]bool{}
			for j, val := range f.Values {
				if val == "" {
					v.errorf(doc, fmt.Sprintf("%s.values[%d]", path, j), "Remove the empty value.", "empty value in enum field %q in %s", f.Name, of)
				} else if seenVal[val] {
					v.errorf(doc, fmt.Sprintf("%s.values[%d]", path, j), "Remove the repeated value.", "duplicate value %q in enum field %q in %s", val, f.Name, of)
				}
				seenVal[val] = true
			}
		} else if len(f.Values) > 0 {
			v.errorf(doc, path+".values", "Remove values, or set type: enum.", "values set on %s field %q in %s; only enum fields take values", f.Type, f.Name, of)
		}
		if f.Default != nil {
			if p := defaultProblem(f); p != "" {
				v.errorf(doc, path+".default", "Give a default of the field's type, or remove it.",
					"invalid default of %s field %q in %s: %s", f.Type, f.Name, of, p)
			}
		}
	}
}

// defaultProblem says why a field's default does not fit its type, or "" when it does.
func defaultProblem(f Field) string {
	switch f.Type {
	case TypeString, TypeText:
		if _, ok := f.Default.(string); !ok {
			return "want a string"
		}
	case TypeInteger:
		switch d := f.Default.(type) {
		case int, int64, uint64:
		case float64:
			if d != math.Trunc(d) || math.IsInf(d, 0) {
				return "want a whole number"
			}
		default:
			return "want a whole number"
		}
	case TypeNumber:
		switch f.Default.(type) {
		case int, int64, uint64, float64:
		default:
			return "want a number"
		}
	case TypeBoolean:
		if _, ok := f.Default.(bool); !ok {
			return "want true or false"
		}
	case TypeDatetime:
		s, ok := f.Default.(string)
		if !ok {
			return "want an RFC 3339 date-time such as \"2024-01-31T12:00:00Z\""
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Sprintf("%q is not an RFC 3339 date-time such as \"2024-01-31T12:00:00Z\"", truncate(s, 40))
		}
	case TypeEnum:
		s, ok := f.Default.(string)
		if !ok || !slices.Contains(f.Values, s) {
			return fmt.Sprintf("want one of %s", quoteList(f.Values, "or"))
		}
	}
	return ""
}

// hostnameConflicts reports a hostname claimed by two apps of one environment: requests could not be routed.
func (v *validator) hostnameConflicts() {
	owner := map[[2]string]int{}
	for i, a := range v.m.Apps {
		for j, h := range a.Spec.Hostnames {
			k := [2]string{a.Spec.Environment, h}
			if o, dup := owner[k]; dup && o != i {
				v.errorf(v.appDocs[i], fmt.Sprintf("spec.hostnames[%d]", j),
					fmt.Sprintf("%s claims it at %s; a hostname routes to one app of an environment.", v.appDocs[o].what, v.appDocs[o].position("spec.hostnames")),
					"hostname %q of %s is also claimed by %s", h, v.appDocs[i].what, v.appDocs[o].what)
				continue
			}
			owner[k] = i
		}
	}
}

// capacity reports environments declared with more apps than their runtime may hold.
func (v *validator) capacity() {
	for i, e := range v.m.Environments {
		n := len(v.m.AppsIn(e.Metadata.Name))
		if e.Spec.Runtime.MaxApps > 0 && n > e.Spec.Runtime.MaxApps {
			v.errorf(v.envDocs[i], "spec.runtime.maxApps", "Raise maxApps, or spread the apps over more environments.",
				"%s holds %d apps but its runtime.maxApps is %d", v.envDocs[i].what, n, e.Spec.Runtime.MaxApps)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
