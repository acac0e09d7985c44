package dockertest

import (
	"context"
	"time"

	"github.com/moby/moby/client"

	"github.com/appfleet/appfleet/spec"
)

// Connect returns a client of the engine DOCKER_HOST names, else the local one, and an error when it does
// not answer within 10 s.
func Connect(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = cli.Close()
		return nil, err
	}
	return cli, nil
}

// RemoveFleet force-removes every container and volume labelled with fleet: a fleet name the caller made
// unique, so that all of them are its own.
func RemoveFleet(cli *client.Client, fleet string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	label := client.Filters{}.Add("label", spec.LabelFleet+"="+fleet)
	if cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: label}); err == nil {
		for _, c := range cs.Items {
			_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
	if vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: label}); err == nil {
		for _, v := range vs.Items {
			_, _ = cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true})
		}
	}
}
