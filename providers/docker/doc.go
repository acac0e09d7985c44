// Package docker is the provider that runs an environment's runtime in a container on a Docker host: the
// local engine, DOCKER_HOST, a tcp:// host with TLS, or an ssh:// host reached with the ssh binary running
// `docker system dial-stdio` there, as the docker CLI does.
//
// Each environment is one container, appfleet-<fleet>-<env>, and one named volume,
// appfleet-<fleet>-<env>-data, mounted at /data, both labelled with the fleet and the environment. The
// image is the declared one, else appfleet-runtime:<12 hex of this binary's sha256>, built on the host from
// the running static binary in an in-memory build context (FROM scratch, a /data owned by a non-root user)
// whenever the host lacks it: no registry is involved.
//
// The provider remembers nothing on the applying machine. What a plan needs is read from the host: the
// container's labels hold the spec it was created with and its hash, inspect gives the image, the limits
// and the published port, and the management token lives in the volume (/data/token), written there
// before the first start (the declared runtime.token, else one generated once) and read back when needed.
// A fresh checkout with the same manifests therefore plans what the machine that applied last would.
//
// The management API is published on the host's loopback unless spec.docker.publish says otherwise. For an
// ssh:// host it is reached through the same ssh: a loopback listener on this machine whose every
// connection is one `ssh -W` to the published port on the remote. That costs one ssh handshake per
// connection (HTTP keep-alive reuses them), but needs no process to manage beyond the connection's own and
// leaves nothing running when appfleet exits, unlike a long-lived `ssh -L`; and it reads the user's ssh
// configuration, keys and agent exactly as the docker CLI's connection does, which a Go ssh client would not.
//
// The package never adopts what it did not create: a container or volume of the same name without this
// fleet's labels is refused, never reused or removed. It never deletes data on destroy: the volume's
// content is copied into an archive volume labelled appfleet.dev/archived, and only Purge removes those.
package docker
