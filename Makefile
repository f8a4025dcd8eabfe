# The two commands of the README: `make demo` and `make test`. Both install what they need.

CARGO ?= cargo
VCSIM := tests/vcsim/vcsim
VCSIM_SRC := $(wildcard tests/vcsim/*.go)
DEMO_DIR := target/demo
DEMO_PORT ?= 10169

.PHONY: all demo test deps build lint unit check-alerts bench fuzz reliability clean

all: build

deps:
	@scripts/install-deps.sh

$(VCSIM): $(VCSIM_SRC)
	cd tests/vcsim && GOPATH=/usr/share/gocode GO111MODULE=off go build -o vcsim .

build:
	$(CARGO) build

## demo: the simulator with a sample inventory plus the exporter, on http://localhost:$(DEMO_PORT)/metrics
demo: deps $(VCSIM) build
	@scripts/demo.sh $(DEMO_PORT)

## test: everything CI runs: format, lints, unit, integration (simulator), golden, promtool, alerts
test: deps $(VCSIM) check-alerts
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	cd tests/vcsim && GOPATH=/usr/share/gocode GO111MODULE=off go vet . && GOPATH=/usr/share/gocode GO111MODULE=off go test .
	$(CARGO) test --lib --tests
	@scripts/fuzz.sh 20 --if-available

## check-alerts: promtool check/test rules, amtool check-config, dashboards = their generator
check-alerts: deps
	@scripts/check-alerts.sh

## bench: performance at 5,000 and 40,000 VMs, as ratios to baselines of the same run (~10 min; not part of test)
bench: deps $(VCSIM)
	@bench/run.sh

## fuzz: each cargo-fuzz target (SOAP answers, config) for FUZZ_SECONDS (default 300); needs nightly
FUZZ_SECONDS ?= 300
fuzz:
	@scripts/fuzz.sh $(FUZZ_SECONDS)

## reliability: the fault-injection suite one fault at a time; its table goes to docs/reliability.md
reliability: deps $(VCSIM)
	@scripts/reliability.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -f $(VCSIM)
