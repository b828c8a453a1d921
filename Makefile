# Development and CI entry points. `make help` lists the targets.
#
# Tools are installed into ./bin with `go install` (no Docker, no downloads from anywhere but the Go
# module proxy). A tool is built only when its binary is missing: to change a version, edit it
# below and delete the binary (e.g. `rm bin/temporal && make tools`).

SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN := $(CURDIR)/bin
GO ?= go

TEMPORAL_CLI_VERSION  := v1.5.1
LOCAL_KMS_VERSION     := v0.0.0-20260228092603-2a5e92d09ab6
MAILPIT_VERSION       := v1.33.1
STATICCHECK_VERSION   := v0.8.2
WORKFLOWCHECK_VERSION := v0.6.0
HELM_VERSION          := v3.19.0
# goaws v0.4.5 speaks only the SQS query protocol: aws-sdk-go-v2 service/sqs stays at v1.26.0 (go.mod),
# the last release before the SDK moved SQS to JSON 1.0.
GOAWS_VERSION         := v0.4.5

TOOLS := $(BIN)/temporal $(BIN)/local-kms $(BIN)/mailpit $(BIN)/staticcheck $(BIN)/workflowcheck $(BIN)/helm $(BIN)/goaws
# The binaries the tests run (internal/testenv finds them in bin/; deploy/deploy_test.go renders
# the Helm chart with bin/helm; goaws is the SQS queue of ORDER_CHANGE notifications).
TEST_TOOLS := $(BIN)/temporal $(BIN)/local-kms $(BIN)/mailpit $(BIN)/helm $(BIN)/goaws

# `make test` runs one package at a time: the integration packages share two cores with the
# Temporal dev server, Postgres, local-kms and Mailpit. Extra flags: make test TESTFLAGS=-v
TEST_TIMEOUT ?= 14m
TESTFLAGS ?=

# `make bench` drives BENCH_ORDERS orders through the real stack (bench/) and writes the table as
# JSON to BENCH_OUT (default bench/results/<timestamp>.json), then runs the Go benchmarks.
# `make chaos` drives CHAOS_ORDERS orders while it kills and restarts things, then checks invariants.
BENCH_ORDERS ?= 2000
BENCH_OUT ?=
CHAOS_ORDERS ?= 200
BENCHFLAGS ?=

.PHONY: help tools deps lint test test-short bench bench-go chaos run reset fmt

help: ## Show this help
	@echo "Usage: make <target>"
	@echo
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

tools: $(TOOLS) ## Install temporal, local-kms, mailpit, staticcheck, workflowcheck, helm and goaws into bin/ (skips those present)

$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

$(BIN)/local-kms:
	GOBIN=$(BIN) $(GO) install github.com/nsmithuk/local-kms@$(LOCAL_KMS_VERSION)

# goaws's main package is app/cmd, which `go install` would name bin/cmd: install it aside and rename.
$(BIN)/goaws:
	tmp=$$(mktemp -d) && GOBIN=$$tmp $(GO) install github.com/Admiral-Piett/goaws/app/cmd@$(GOAWS_VERSION) && mv $$tmp/cmd $(BIN)/goaws && rmdir $$tmp

$(BIN)/mailpit:
	GOBIN=$(BIN) $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(BIN)/workflowcheck:
	GOBIN=$(BIN) $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

# Renders deploy/chart in the drift test (no cluster needed); about 5 minutes to build on 2 cores.
$(BIN)/helm:
	GOBIN=$(BIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

lint: $(BIN)/staticcheck $(BIN)/workflowcheck ## go vet, staticcheck, and workflowcheck on workflows/ (all run; fails if any fails)
	@status=0; \
	echo "==> go vet ./..."; $(GO) vet ./... || status=1; \
	echo "==> staticcheck ./..."; $(BIN)/staticcheck ./... || status=1; \
	if [ -d workflows ]; then \
		echo "==> workflowcheck ./workflows/... (config: scripts/workflowcheck.config.yaml)"; $(BIN)/workflowcheck -config scripts/workflowcheck.config.yaml ./workflows/... || status=1; \
	else \
		echo "==> workflowcheck: no workflows/ directory yet, nothing to check"; \
	fi; \
	exit $$status

deps: ## Install what tests and the dev stack need besides Go (pdftotext, psql, PostgreSQL running), or say how
	@./scripts/ensure-deps

test: $(TEST_TOOLS) deps ## Unit and integration tests, one package at a time (what CI runs)
	$(GO) test -p 1 -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./...

test-short: ## Unit tests only (-short: tests that need PostgreSQL, Temporal, local-kms or Mailpit skip themselves, saying so)
	$(GO) test -short -count=1 $(TESTFLAGS) ./...

bench: $(TEST_TOOLS) ## Harness: BENCH_ORDERS orders end to end vs a no-op baseline (table + JSON), then bench-go
	$(GO) run ./bench -orders $(BENCH_ORDERS) $(if $(BENCH_OUT),-out $(BENCH_OUT)) $(BENCHFLAGS)
	$(MAKE) --no-print-directory bench-go

bench-go: $(TEST_TOOLS) ## Go benchmarks, one package at a time
	$(GO) test -p 1 -run '^$$' -bench . -benchmem $(TESTFLAGS) ./...

chaos: $(TEST_TOOLS) ## Fault injection: CHAOS_ORDERS orders while workers are SIGKILLed, PostgreSQL restarts, KMS stops; checks invariants
	$(GO) run ./bench -chaos -orders $(CHAOS_ORDERS) $(BENCHFLAGS)

run: deps ## The whole dev stack in the foreground (Temporal + Web UI, local-kms, Mailpit, SP-API sandbox, worker); Ctrl-C stops it
	./scripts/dev-stack

reset: ## Wipe the dev stack's state: this checkout's database and .data/ (Temporal history, KMS keys, Mailpit); stop make run first
	./scripts/dev-stack --reset

fmt: ## gofmt -s every Go file
	gofmt -s -w $$(find . -name '*.go' -not -path './bin/*' -not -path './.data/*' -not -path './.git/*')
