// Command appfleet declares, plans and applies fleets of isolated apps, and serves them as a runtime.
package main

import (
	"os"

	"github.com/appfleet/appfleet/internal/cli"
)

func main() { os.Exit(cli.Main()) }
