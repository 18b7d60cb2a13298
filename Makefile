# kvresp. `make test` is the one test command (README, .ci/run): on a fresh Debian bookworm
# machine with Go it installs the test tools, checks formatting and lints, then runs every test
# with the race detector, end-to-end tests included (they build ./cmd/kvresp themselves).

GO ?= go
STATICCHECK := $(CURDIR)/.bin/staticcheck
# Go test's own deadline; the whole `make test` must fit in 30 minutes on 2 cores.
TEST_TIMEOUT ?= 25m
FUZZTIME ?= 30s

.PHONY: all test deps lint build bench bench-tier fuzz clean vm-test

all: build

test: lint vm-test
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

deps:
	bash scripts/deps.sh

lint: deps
	@files="$$(find . -name '*.go' -not -path './.bin/*' -not -path './.git/*' -not -path '*/testdata/*' -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$files" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$files"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# A static binary (no cgo): it also runs in a busybox initramfs and in distroless images.
build:
	@mkdir -p bin && { [ -f bin/.gitignore ] || echo '*' > bin/.gitignore; }
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/kvresp ./cmd/kvresp

# The in-guest tests on a QEMU machine with an FDP NVMe drive and an NVDIMM (scripts/vm/run.sh).
vm-test: build
	bash scripts/vm/run.sh

bench: build
	bash scripts/bench.sh

# The NVMe tier against fio on the same file (needs fio): scripts/bench-tier.sh says how.
bench-tier:
	bash scripts/bench-tier.sh

fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

clean:
	rm -rf bin .bin
	$(GO) clean -testcache
