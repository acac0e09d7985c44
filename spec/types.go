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
)

// Provider names the kind of place an environment's runtime runs in.
const (
	ProviderLocal     = "local"
	ProviderDocker    = "docker"
	ProviderTerraform = "terraform"
)

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
	Module    string         `yaml:"module" json:"module"`
	Variables map[string]any `yaml:"variables,omitempty" json:"variables,omitempty"`
}

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
	Environment string            `yaml:"environment" json:"environment"`
	State       string            `yaml:"state,omitempty" json:"state,omitempty"`
	Protect     bool              `yaml:"protect,omitempty" json:"protect,omitempty"`
	Database    Database          `yaml:"database,omitempty" json:"database"`
	Hostnames   []string          `yaml:"hostnames,omitempty" json:"hostnames,omitempty"`
	APIKeys     []APIKey          `yaml:"apiKeys,omitempty" json:"apiKeys,omitempty"`
	Settings    map[string]string `yaml:"settings,omitempty" json:"settings,omitempty"`
	Limits      Limits            `yaml:"limits,omitempty" json:"limits"`
	Collections []Collection      `yaml:"collections,omitempty" json:"collections,omitempty"`
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
