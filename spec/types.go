package spec

import (
	"time"
)

// APIVersion is the only apiVersion this release reads.
const APIVersion = "appfleet.dev/v1alpha1"

// Kind names one of the manifest kinds.
type Kind string

// The manifest kinds.
const (
	KindFleet       Kind = "Fleet"
	KindEnvironment Kind = "Environment"
	KindApp         Kind = "App"
	KindAppSet      Kind = "AppSet"
)

// Placement strategies: how an app with a placement selector is given an environment.
const (
	// StrategySpread puts each new app in the matching environment that holds the fewest apps.
	StrategySpread = "spread"
	// StrategyBinpack fills the matching environments in name order, each up to its maxApps.
	StrategyBinpack = "binpack"
)

// Provider names the kind of place an environment's runtime runs in.
const (
	ProviderLocal     = "local"
	ProviderDocker    = "docker"
	ProviderTerraform = "terraform"
)

// Drift policies: what the GitOps daemon does when what runs no longer matches the manifests.
const (
	DriftHeal   = "heal"
	DriftNotify = "notify"
	DriftIgnore = "ignore"
)

// DriftPolicies lists every drift policy.
var DriftPolicies = []string{DriftHeal, DriftNotify, DriftIgnore}

// App states.
const (
	StateRunning = "running"
	StateStopped = "stopped"
)

// Database drivers and isolation modes.
const (
	DriverSQLite      = "sqlite"
	DriverPostgres    = "postgres"
	IsolationDatabase = "database"
	IsolationSchema   = "schema"
)

// Field types.
const (
	TypeString   = "string"
	TypeText     = "text"
	TypeInteger  = "integer"
	TypeNumber   = "number"
	TypeBoolean  = "boolean"
	TypeDatetime = "datetime"
	TypeJSON     = "json"
	TypeEnum     = "enum"
)

// FieldTypes lists every field type in the order the documentation gives them.
var FieldTypes = []string{TypeString, TypeText, TypeInteger, TypeNumber, TypeBoolean, TypeDatetime, TypeJSON, TypeEnum}

// ReservedFieldNames are the fields every collection has; no manifest may declare them.
var ReservedFieldNames = []string{"id", "createdAt", "updatedAt"}

// Source is where a document came from, for diagnostics.
type Source struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	// Dir is the absolute directory that relative paths in the document (TLS files, modules) resolve against.
	Dir string `json:"-"`
}

// Metadata names a document and carries its labels.
type Metadata struct {
	Name   string            `yaml:"name" json:"name"`
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
}

// Fleet is the optional document that names a fleet and sets fleet-wide behaviour.
type Fleet struct {
	APIVersion string    `yaml:"apiVersion" json:"apiVersion"`
	Kind       Kind      `yaml:"kind" json:"kind"`
	Metadata   Metadata  `yaml:"metadata" json:"metadata"`
	Spec       FleetSpec `yaml:"spec" json:"spec"`
	Source     Source    `yaml:"-" json:"-"`
}

// FleetSpec holds fleet-wide settings.
type FleetSpec struct {
	// Prune deletes apps and environments that are no longer declared.
	Prune bool `yaml:"prune,omitempty" json:"prune,omitempty"`
	// Parallelism bounds how many actions apply runs at once; 0 means the default.
	Parallelism int `yaml:"parallelism,omitempty" json:"parallelism,omitempty"`
	// Drift is what `appfleet watch` does when an app no longer matches its manifest: heal (put it back),
	// notify (report it only) or ignore; empty means notify (or heal with --self-heal).
	Drift string `yaml:"drift,omitempty" json:"drift,omitempty"`
}

// Environment is one place where one runtime runs.
type Environment struct {
	APIVersion string          `yaml:"apiVersion" json:"apiVersion"`
	Kind       Kind            `yaml:"kind" json:"kind"`
	Metadata   Metadata        `yaml:"metadata" json:"metadata"`
	Spec       EnvironmentSpec `yaml:"spec" json:"spec"`
	Source     Source          `yaml:"-" json:"-"`
}

// EnvironmentSpec says which provider runs the runtime and how; exactly the block that Provider names is set.
type EnvironmentSpec struct {
	Provider  string         `yaml:"provider" json:"provider"`
	Local     *LocalSpec     `yaml:"local,omitempty" json:"local,omitempty"`
	Docker    *DockerSpec    `yaml:"docker,omitempty" json:"docker,omitempty"`
	Terraform *TerraformSpec `yaml:"terraform,omitempty" json:"terraform,omitempty"`
	Runtime   RuntimeSpec    `yaml:"runtime,omitempty" json:"runtime,omitempty"`
}

// LocalSpec configures a runtime started on this machine.
type LocalSpec struct {
	// Listen is host:port; empty means a free loopback port chosen at first start and kept.
	Listen string `yaml:"listen,omitempty" json:"listen,omitempty"`
}

// DockerSpec configures a runtime in a container on a Docker host.
type DockerSpec struct {
	Host    string     `yaml:"host,omitempty" json:"host,omitempty"`
	TLS     *DockerTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	Image   string     `yaml:"image,omitempty" json:"image,omitempty"`
	Publish string     `yaml:"publish,omitempty" json:"publish,omitempty"`
	Memory  string     `yaml:"memory,omitempty" json:"memory,omitempty"`
	CPUs    string     `yaml:"cpus,omitempty" json:"cpus,omitempty"`
	// Endpoint is the management API's base URL as this machine reaches it, when that is not the
	// published address (a tcp:// host behind NAT or a proxy); default: derived from the host and publish.
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
}

// DockerTLS names the PEM files of a tcp:// Docker host's TLS: the CA that signed the daemon's
// certificate, and this client's certificate and key. Relative paths are relative to the manifest's directory.
type DockerTLS struct {
	CA   string `yaml:"ca,omitempty" json:"ca,omitempty"`
	Cert string `yaml:"cert,omitempty" json:"cert,omitempty"`
	Key  string `yaml:"key,omitempty" json:"key,omitempty"`
}

// TerraformSpec configures a runtime on infrastructure made by the user's Terraform module.
type TerraformSpec struct {
	// Module is the module's source: a local directory (./ or ../, relative to the manifest, or absolute)
	// or any remote source Terraform understands (git::https://..., a registry address).
	Module string `yaml:"module" json:"module"`
	// Variables are passed to the module as they are; the names appfleet sets itself (TerraformReservedVariables)
	// may not appear.
	Variables map[string]any `yaml:"variables,omitempty" json:"variables,omitempty"`
	// Backend is where Terraform keeps the environment's state; nil means local state in the working dir.
	Backend *TerraformBackend `yaml:"backend,omitempty" json:"backend,omitempty"`
	// Binary is the terraform executable: a name looked up on the PATH or a path (relative to the
	// manifest); empty means "terraform" on the PATH. It is never downloaded.
	Binary string `yaml:"binary,omitempty" json:"binary,omitempty"`
}

// TerraformBackend is a Terraform backend block: its type ("s3", "gcs", "pg", "local", ...) and settings.
type TerraformBackend struct {
	Type   string         `yaml:"type" json:"type"`
	Config map[string]any `yaml:"config,omitempty" json:"config,omitempty"`
}

// TerraformReservedVariables are the module variables appfleet sets itself, each only when the module
// declares it: the runtime's token (sensitive), the environment's and fleet's names, the path of the
// appfleet binary, and the runtime's settings from spec.runtime.
var TerraformReservedVariables = []string{"token", "environment", "fleet", "appfleet_binary", "idle_timeout", "max_apps"}

// RuntimeSpec holds settings of the runtime process itself.
type RuntimeSpec struct {
	MaxApps     int      `yaml:"maxApps,omitempty" json:"maxApps,omitempty"`
	IdleTimeout Duration `yaml:"idleTimeout,omitempty" json:"idleTimeout,omitzero"`
	// Token is the management API's bearer token, when declared; otherwise the provider generates one and
	// keeps it where it can read it back. Its value never leaves Redacted copies of the spec.
	Token *SecretRef `yaml:"token,omitempty" json:"token,omitempty"`
}

// App is an isolated business app inside a runtime.
type App struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       Kind     `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       AppSpec  `yaml:"spec" json:"spec"`
	Source     Source   `yaml:"-" json:"-"`
}

// AppSpec is everything an app declares. Its JSON form (with secrets resolved) is what the runtime API takes.
type AppSpec struct {
	// Environment is where the app runs. Exactly one of Environment and Placement is written; the
	// control plane fills Environment from Placement before planning.
	Environment string `yaml:"environment,omitempty" json:"environment"`
	// Placement lets the control plane choose the environment among those whose labels match. It is
	// the control plane's alone: it is cleared once the environment is chosen and never sent to a runtime.
	Placement   *Placement        `yaml:"placement,omitempty" json:"placement,omitempty"`
	State       string            `yaml:"state,omitempty" json:"state,omitempty"`
	Protect     bool              `yaml:"protect,omitempty" json:"protect,omitempty"`
	Database    Database          `yaml:"database,omitempty" json:"database"`
	Hostnames   []string          `yaml:"hostnames,omitempty" json:"hostnames,omitempty"`
	APIKeys     []APIKey          `yaml:"apiKeys,omitempty" json:"apiKeys,omitempty"`
	Settings    map[string]string `yaml:"settings,omitempty" json:"settings,omitempty"`
	Limits      Limits            `yaml:"limits,omitempty" json:"limits"`
	Collections []Collection      `yaml:"collections,omitempty" json:"collections,omitempty"`
	// Drift overrides Fleet.spec.drift for this app. It is the control plane's policy, never sent to a
	// runtime (a runtime's copy of the spec does not have it).
	Drift string `yaml:"drift,omitempty" json:"-"`
}

// Placement chooses an app's environment among the declared ones whose labels match Selector.
type Placement struct {
	// Selector holds the labels an environment must all carry; empty matches every environment.
	Selector map[string]string `yaml:"selector,omitempty" json:"selector,omitempty"`
	// Strategy is StrategySpread (the default) or StrategyBinpack.
	Strategy string `yaml:"strategy,omitempty" json:"strategy,omitempty"`
}

// Matches reports whether an environment with these labels is one the placement may choose.
func (p *Placement) Matches(labels map[string]string) bool {
	for k, v := range p.Selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// AppSet generates apps from one template: one app per element its generators produce, each the
// template with the element's parameters substituted for {{name}} in string values.
type AppSet struct {
	APIVersion string     `yaml:"apiVersion" json:"apiVersion"`
	Kind       Kind       `yaml:"kind" json:"kind"`
	Metadata   Metadata   `yaml:"metadata" json:"metadata"`
	Spec       AppSetSpec `yaml:"spec" json:"spec"`
	Source     Source     `yaml:"-" json:"-"`
}

// AppSetSpec is an AppSet's generators and the template of the apps it generates.
type AppSetSpec struct {
	// Generators produce the parameter sets; the apps are the union of every generator's elements.
	Generators []Generator `yaml:"generators" json:"generators"`
	Template   AppTemplate `yaml:"template" json:"template"`
}

// Generator produces parameter sets: exactly one of List and Matrix is set.
type Generator struct {
	// List holds the parameter sets as written, one map of parameter name to value per element.
	List []map[string]string `yaml:"list,omitempty" json:"list,omitempty"`
	// Matrix combines every element of its first generator with every element of its second.
	Matrix *Matrix `yaml:"matrix,omitempty" json:"matrix,omitempty"`
}

// Matrix is the product of exactly two generators; they may not set the same parameter.
type Matrix struct {
	Generators []Generator `yaml:"generators" json:"generators"`
}

// AppTemplate is an App without apiVersion and kind: what every generated app is made from.
type AppTemplate struct {
	Metadata Metadata `yaml:"metadata" json:"metadata"`
	Spec     AppSpec  `yaml:"spec" json:"spec"`
}

// Database says where an app keeps its data.
type Database struct {
	Driver    string     `yaml:"driver,omitempty" json:"driver,omitempty"`
	DSN       *SecretRef `yaml:"dsn,omitempty" json:"dsn,omitempty"`
	Isolation string     `yaml:"isolation,omitempty" json:"isolation,omitempty"`
}

// APIKey is one named key that opens an app's data API.
type APIKey struct {
	Name  string    `yaml:"name" json:"name"`
	Value SecretRef `yaml:"value" json:"value"`
}

// Limits bound what one app may take from its runtime.
type Limits struct {
	// MaxInFlight is the bulkhead: requests beyond it answer 503 at once. 0 means unlimited.
	MaxInFlight int `yaml:"maxInFlight,omitempty" json:"maxInFlight,omitempty"`
	// RequestsPerSecond is a hard cap on the app's request rate: requests beyond it answer 429 with
	// Retry-After. 0 means no cap.
	RequestsPerSecond int `yaml:"requestsPerSecond,omitempty" json:"requestsPerSecond,omitempty"`
	// Burst is how many requests may come at once above the rate (a token bucket's size); 0 means
	// RequestsPerSecond. It needs RequestsPerSecond.
	Burst int `yaml:"burst,omitempty" json:"burst,omitempty"`
}

// Collection is one table of an app's data model.
type Collection struct {
	Name   string  `yaml:"name" json:"name"`
	Fields []Field `yaml:"fields" json:"fields"`
}

// Field is one column of a collection.
type Field struct {
	Name     string   `yaml:"name" json:"name"`
	Type     string   `yaml:"type" json:"type"`
	Required bool     `yaml:"required,omitempty" json:"required,omitempty"`
	Unique   bool     `yaml:"unique,omitempty" json:"unique,omitempty"`
	Values   []string `yaml:"values,omitempty" json:"values,omitempty"`
	Default  any      `yaml:"default,omitempty" json:"default,omitempty"`
}

// Duration is a time.Duration written as Go duration text ("10m") in YAML and JSON.
type Duration struct{ time.Duration }
