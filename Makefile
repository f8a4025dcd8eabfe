# The two commands of the README: `make demo` and `make test`. Both install what they need.

CARGO ?= cargo
VCSIM := tests/vcsim/vcsim
VCSIM_SRC := $(wildcard tests/vcsim/*.go)
DEMO_DIR := target/demo
DEMO_PORT ?= 10169

.PHONY: all demo test test-stress deps build lint unit check-alerts bench bench-hostio fuzz reliability clean deb test-deb rpm test-rpm msrv deps-image image test-image test-manifests

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

## test: everything CI runs: format, lints, unit, integration (simulator), golden, promtool, alerts, packages, Kubernetes manifests
test: deps $(VCSIM) check-alerts
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	cd tests/vcsim && GOPATH=/usr/share/gocode GO111MODULE=off go vet . && GOPATH=/usr/share/gocode GO111MODULE=off go test .
	$(CARGO) test --lib --tests
	@scripts/fuzz.sh 20 --smoke
	@scripts/test-deb.sh
	@scripts/test-rpm.sh
	@scripts/test-manifests.sh
	@$(MAKE) --no-print-directory msrv

## test-stress: the unit and integration tests 5 times with one core kept busy, then 5 times without (RUNS=n to change; ~50 min; not part of test)
test-stress: deps $(VCSIM)
	@scripts/test-stress.sh

## check-alerts: promtool check/test rules, amtool check-config, dashboards = their generator
check-alerts: deps
	@scripts/check-alerts.sh

## bench: performance at 5,000 and 40,000 VMs, as ratios to baselines of the same run, the backup checks' cost, host I/O (~15 min; not part of test)
bench: deps $(VCSIM)
	@bench/run.sh
	@python3 bench/hostio.py
	@echo "event follower, a burst of 10,000 tasks at 40,000 VMs (examples/follower_burst.rs):"
	@target/release/examples/follower_burst 40000 10000

## bench-hostio: the host I/O counters at 2,500 hosts only (~4 min; part of bench)
bench-hostio: deps $(VCSIM)
	$(CARGO) build --release --bin vsphere_backup_exporter
	@python3 bench/hostio.py

## fuzz: each cargo-fuzz target (SOAP answers, config) for FUZZ_SECONDS (default 300); needs nightly
FUZZ_SECONDS ?= 300
fuzz:
	@scripts/fuzz.sh $(FUZZ_SECONDS)

## reliability: the fault-injection suite one fault at a time; its table goes to docs/reliability.md
reliability: deps $(VCSIM)
	@scripts/reliability.sh

## deb: the Debian package, target/debian/vsphere-backup-exporter_VERSION_ARCH.deb (release build)
deb:
	@command -v cargo-deb >/dev/null || $(CARGO) install cargo-deb --locked
	$(CARGO) deb

## test-deb: build the package from the dev profile and check it unpacked (dpkg -x), unit included
test-deb:
	@scripts/test-deb.sh

## rpm: the RPM package, target/generate-rpm/vsphere-backup-exporter-VERSION-1.ARCH.rpm (release build)
rpm:
	@command -v cargo-generate-rpm >/dev/null || $(CARGO) install cargo-generate-rpm --locked
	$(CARGO) build --release --bin vsphere_backup_exporter
	strip -s target/release/vsphere_backup_exporter
	$(CARGO) generate-rpm

## test-rpm: build the RPM from the dev build and check it unpacked (needs rpm: apt-get install rpm)
test-rpm:
	@scripts/test-rpm.sh

## deps-image: make deps, plus podman, musl-tools and the Rust target x86_64-unknown-linux-musl
deps-image:
	@scripts/install-deps.sh image

## image: the container image FROM scratch, offline (podman or buildah): the static musl binary, CA bundle, user 65534; prints its size and writes target/image/vsphere-backup-exporter_VERSION.tar
image: deps-image
	@scripts/image.sh

## test-image: build the image, check its configuration and files, run its entrypoint against the simulator (not part of test: a cold musl release build takes ~7 min on 2 cores)
test-image: deps-image $(VCSIM)
	@scripts/test-image.sh

## test-manifests: render deploy/kubernetes with kubectl kustomize, validate every object against its schema and the others, --config.check their configurations (part of test, ~5 s)
test-manifests: deps
	@scripts/test-manifests.sh

## msrv: type-check every target with Cargo.toml's rust-version (part of make test; make deps installs that toolchain where rustup can fetch it, else this says it could not check)
msrv:
	@msrv=$$(sed -n 's/^rust-version = "\(.*\)"$$/\1/p' Cargo.toml); \
	if ! RUSTUP_AUTO_INSTALL=0 rustup run "$$msrv" rustc --version >/dev/null 2>&1; then \
		echo "msrv: NOT CHECKED: rustup has no Rust $$msrv on this machine and could not install it (make deps tries)"; \
		exit 0; \
	fi; \
	echo "msrv: checking every target with Rust $$msrv (target/msrv)"; \
	CARGO_TARGET_DIR=target/msrv RUSTUP_AUTO_INSTALL=0 $(CARGO) +"$$msrv" check --all-targets --quiet

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -f $(VCSIM)
