# Everyday targets; CONTRIBUTING.md says what each test tier needs. CI runs
# .ci/run, not this file; `make lint test race` covers the same checks.
GO          ?= go
BINDIR      ?= bin
# fuzz: each fuzz target runs for FUZZTIME; FUZZ (a regexp matching whole
# names: FuzzLoad, 'FuzzServe.*') picks targets.
FUZZTIME    ?= 30s
FUZZ        ?= .*
# bench: BENCH (a regexp) over BENCHPKG; the cached answer path by default.
BENCH       ?= ServeDNS
BENCHPKG    ?= ./dnslb/answer/
# integration, netlab: RUN (a regexp) picks tests.
RUN         ?= .
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.6.1
# Everything but the integration suite (which builds and runs the binary).
UNIT         = $(shell $(GO) list ./... | grep -v '/integration$$')
# The concurrency-heavy packages, as CI runs them under the race detector.
RACEPKGS    ?= ./zones/... ./dnslb/... ./healthcheck/... ./vip/...

.PHONY: all build test race lint bench fuzz integration netlab clean

all: lint test

build:
	$(GO) build -o $(BINDIR)/dnslb ./cmd/dnslb

test:
	$(GO) test $(UNIT)

race:
	$(GO) test -race -count=1 $(RACEPKGS)

# What CI checks (gofmt, go vet, staticcheck), then golangci-lint with
# .golangci.yml when it is installed.
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	@if command -v golangci-lint >/dev/null 2>&1; then \
		echo golangci-lint run ./...; golangci-lint run ./...; \
	else \
		echo "golangci-lint not installed: skipped (see .golangci.yml)"; \
	fi

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(BENCHPKG)

# Every fuzz target found in the tests, one after the other, each for
# FUZZTIME; a failing input is saved under the package's testdata/fuzz.
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f | grep -Ex '$(FUZZ)'); do \
			echo "== $$name ($$(dirname $$f), $(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$(dirname $$f); \
		done; \
	done

# The built binary against dig, NSD, unbound, Chromium and keepalived; needs
# those tools and root (CONTRIBUTING.md), skips without them unless CI=true.
integration:
	$(GO) test -count=1 -run '$(RUN)' ./integration/

# The tests that run in network namespaces (the VRRP lab): root, ip,
# keepalived, ping. RUN=… on the command line picks among them.
netlab: RUN = Test(VIP|Listen)
netlab:
	$(GO) test -count=1 -run '$(RUN)' ./integration/

# What the build and the tests leave behind (as .gitignore lists it).
clean:
	rm -rf $(BINDIR) cmd/dnslb/dnslb backends
	find . -path ./.git -prune -o -type f \( -name '*.test' -o -name '*.out' \) -print -exec rm -f {} +
