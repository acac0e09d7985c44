package all

import (
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/providers/docker"
	"github.com/appfleet/appfleet/providers/local"
	"github.com/appfleet/appfleet/providers/terraform"
	"github.com/appfleet/appfleet/spec"
)

// Registry returns a new registry of every provider in this build, keyed by spec.Provider* names.
func Registry() providers.Registry {
	return providers.Registry{
		spec.ProviderLocal:     local.New,
		spec.ProviderDocker:    docker.New,
		spec.ProviderTerraform: terraform.New,
	}
}
