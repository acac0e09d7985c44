# Build, test and check appfleet. `make help` lists the targets.
GO      ?= go
BIN     ?= bin/appfleet
VERSION ?= dev
LDFLAGS := -s -w -X github.com/appfleet/appfleet/internal/version.Version=$(VERSION)

.PHONY: build test lint fuzz bench help

build: ## build a static binary into bin/appfleet
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/appfleet

test: ## run every test (what CI runs)
	$(GO) test -timeout 30m ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz: ## fuzz the manifest loader for FUZZTIME (default 5m)
	$(GO) test ./spec -run '^$$' -fuzz FuzzLoad -fuzztime $${FUZZTIME:-5m} -parallel 1

bench: ## run the Go benchmarks (figures go in docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

help:
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
