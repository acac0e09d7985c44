# Build, test and check appfleet. `make help` lists the targets.
GO      ?= go
BIN     ?= bin/appfleet
VERSION ?= dev
LDFLAGS := -s -w -X github.com/appfleet/appfleet/internal/version.Version=$(VERSION)

.PHONY: build test lint cross fuzz bench help

build: ## build a static binary into bin/appfleet
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/appfleet

test: ## run every test (what CI runs)
	$(GO) test -timeout 30m ./...

lint: ## gofmt, go vet, and go.mod/go.sum exactly as go mod tidy writes them
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result"; exit 1; }
	$(GO) vet ./...

cross: ## build for macOS (everything) and Windows (the command), as CI does
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/appfleet

fuzz: ## fuzz the manifest loader for FUZZTIME (default 5m)
	$(GO) test ./spec -run '^$$' -fuzz FuzzLoad -fuzztime $${FUZZTIME:-5m} -parallel 1

bench: ## run the Go benchmarks (figures go in docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

help:
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
