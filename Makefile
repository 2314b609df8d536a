# payhooks: every command a newcomer or CI needs. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      := .venv
VENV_BIN  := $(CURDIR)/$(VENV)/bin
# Tools from requirements-dev.txt (moto_server, cargo-lambda, sam, cfn-lint) come first on PATH.
export PATH := $(VENV_BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0
# Keep cargo-lambda's cache in one place between runs, or it rebuilds everything (toolchain.md).
export XDG_CACHE_HOME ?= $(CURDIR)/target/.cache
# The one architecture setting: `make build` builds for it and `make deploy` / `make deploy-functions`
# deploy it (the drift test holds them to it). arm64 where its Rust target is installed (cheaper per ms),
# otherwise x86_64. Override with ARCH=x86_64|arm64.
ifndef ARCH
ARCH := $(if $(filter aarch64-unknown-linux-gnu,$(shell rustup target list --installed 2>/dev/null) $(shell uname -m)-unknown-linux-gnu),arm64,x86_64)
endif
# What `make build` built, so a deploy ships it into functions of the same architecture.
BUILT_ARCH := infra/.aws-sam/payhooks-arch
STACK ?= payhooks
# Where `cargo lambda build` puts <binary>/bootstrap (make deploy-functions deploys from here).
LAMBDA_DIR ?= target/lambda
# One function crate per provider: the drift test checks this list against Provider::ALL.
FUNCTIONS := $(notdir $(wildcard functions/*))
PROVIDERS := $(filter-out sweeper,$(FUNCTIONS))
PROVIDER ?=
FIXTURE ?=

.PHONY: help venv test lint unit validate chaos chaos-short bench bench-compare size init-time fuzz demo dev loadtest send build deploy deploy-functions clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV_BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed ## Install the pinned Python tools into .venv

test: lint validate unit chaos-short ## Everything CI runs: fmt, clippy, template validation, all tests (with moto_server), a short chaos soak

lint: ## cargo fmt --check and clippy with -D warnings
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# The fuzz targets run a short pass in `make test`; `make fuzz` runs them for 10^6 inputs each.
FUZZ_INPUTS ?= 1000000

unit: $(VENV)/.installed ## The whole test suite, emulator tests included (starts and stops moto_server)
	BOLERO_RANDOM_ITERATIONS=$${BOLERO_RANDOM_ITERATIONS:-2000} scripts/with-moto.sh cargo test --workspace -- --include-ignored

validate: $(VENV)/.installed ## cfn-lint and sam validate --lint on infra/template.yaml and the example consumer's (offline)
	cfn-lint infra/template.yaml examples/consumer/template.yaml
	sam validate --lint --template-file infra/template.yaml --region us-east-1
	sam validate --lint --template-file examples/consumer/template.yaml --region us-east-1

# The soak's size and seed; CHAOS_ARGS passes more (payhooks-chaos --help).
CHAOS_CALLBACKS ?= 10000
CHAOS_SEED ?= 1
CHAOS_ARGS ?=

chaos: $(VENV)/.installed ## Crash-and-fault soak: 10,000 callbacks, faults on 10% of AWS calls, a crash every ~300 callbacks, then the audit
	cargo build --quiet --bins $(foreach f,$(FUNCTIONS),-p $(f)) -p payhooks-chaos
	scripts/with-moto.sh $${CARGO_TARGET_DIR:-target}/debug/payhooks-chaos --callbacks $(CHAOS_CALLBACKS) --seed $(CHAOS_SEED) \
	  --bin-dir $${CARGO_TARGET_DIR:-target}/debug $(CHAOS_ARGS)

chaos-short: ## The soak's short pass in `make test`: 300 callbacks, a fixed seed, a crash every ~50 callbacks
	$(MAKE) --no-print-directory chaos CHAOS_CALLBACKS=300 CHAOS_SEED=32 CHAOS_ARGS="--crash-every 50"

bench: ## Criterion benchmark: authenticate + parse + normalise, one callback per provider; prints the medians
	cargo bench -p payhooks --bench ingest
	python3 scripts/bench_medians.py

size: ## Release build of every function (the `release` profile) and each binary's size
	cargo build --release $(foreach f,$(FUNCTIONS),-p $(f))
	@python3 -c 'import os, sys; [print(f"  {f:<10} {os.path.getsize(os.path.join(sys.argv[1], f)) / 1e6:6.2f} MB") for f in sys.argv[2:]]' \
	  $${CARGO_TARGET_DIR:-target}/release $(FUNCTIONS)

init-time: $(VENV)/.installed ## Process start to first Runtime API poll of the niobi function (and its own CPU until then), against a fake Runtime API and moto
	scripts/with-moto.sh .venv/bin/python scripts/measure_init.py $${CARGO_TARGET_DIR:-target}/release/niobi 21

bench-compare: ## The criterion bench and the Python twin (scripts/twin) in one run: Rust, Python, ratio, floor per provider
	python3 scripts/bench_compare.py

fuzz: ## Every bolero fuzz target for FUZZ_INPUTS (10^6) inputs, in release; prints each target's count
	# Optimised, but without the functions' fat LTO: a fuzz build need not be the smallest.
	BOLERO_RANDOM_ITERATIONS=$(FUZZ_INPUTS) CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
	  cargo test --release -p payhooks --test suite -- fuzz:: --nocapture --test-threads 2 2>&1 \
	  | grep -E '^fuzz |test result|panicked|FAILED'

demo: $(VENV)/.installed ## The whole stack locally: moto + five functions under cargo lambda watch, samples sent, queues printed
	scripts/local-stack.sh demo

loadtest: $(VENV)/.installed ## 1,000 signed callbacks (30% duplicates) at concurrency 20 to the local stack; latency, throughput, lost and extra
	scripts/local-stack.sh loadtest 1000 20 30

dev: $(VENV)/.installed ## The same local stack, left running (Ctrl-C stops it)
	scripts/local-stack.sh dev

send: ## Sign and send one fixture to the running `make dev` stack: make send PROVIDER=niobi FIXTURE=payin_timeout
	@[ -n "$(PROVIDER)" ] && [ -n "$(FIXTURE)" ] || { echo "usage: make send PROVIDER=<$(subst $(eval) ,|,$(PROVIDERS))> FIXTURE=<name in tests/fixtures/PROVIDER>"; exit 2; }
	@set -a; . target/local/demo.env; set +a; \
	  cargo run --quiet -p payhooks-send -- --provider $(PROVIDER) --fixture tests/fixtures/$(PROVIDER)/$(FIXTURE).json

build: $(VENV)/.installed ## Release build of every function for ARCH: sam build (default), or BUILD=cargo-lambda (into LAMBDA_DIR)
ifeq ($(BUILD),cargo-lambda)
	cargo lambda build --release --lambda-dir $(LAMBDA_DIR) $(if $(filter arm64,$(ARCH)),--arm64,--x86-64) $(foreach f,$(FUNCTIONS),--bin $(f) -p $(f))
else
	cd infra && sam build --parameter-overrides Architecture=$(ARCH)
endif
	mkdir -p $(dir $(BUILT_ARCH)) && echo $(ARCH) > $(BUILT_ARCH)

deploy: $(VENV)/.installed ## sam deploy --guided of what `make build` built, into functions of its architecture (needs AWS credentials)
	@[ -f $(BUILT_ARCH) ] || { echo "make deploy: nothing built; run 'make build' first"; exit 2; }
	cd infra && sam deploy --guided --parameter-overrides Architecture=$$(cat ../$(BUILT_ARCH))

deploy-functions: ## cargo lambda deploy of every function into STACK, configured from its outputs (after `make build BUILD=cargo-lambda`)
	@[ -f $(BUILT_ARCH) ] || { echo "make deploy-functions: nothing built; run 'make build BUILD=cargo-lambda' first"; exit 2; }
	cargo run --quiet -p payhooks-admin -- --stack $(STACK) deploy-config --arch $$(cat $(BUILT_ARCH)) --out target/deploy/$(STACK)
	scripts/deploy-functions.sh target/deploy/$(STACK) $(LAMBDA_DIR)

clean: ## Remove build output and the Python tools
	cargo clean
	rm -rf $(VENV) infra/.aws-sam
