// Package docker holds the docker provider's benchmarks: creating an environment with a cold image build
// and with the image cached, applying 200 apps into one docker runtime, and a no-op plan of 10 docker
// environments of 100 apps each, measured beside the same fleet on local environments in the same run.
//
// Like internal/bench/fleet, they drive the real appfleet binary as a user would and time whole
// processes. Everything here runs only with -bench, and only where a Docker engine answers.
//
// The benchmarks must never leave anything behind nor touch what they did not create: every fleet they
// apply has a name unique to the run, every container and volume labelled with it is removed at the end,
// and so are the images built from the binaries the run made.
package docker
