# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
BIN := $(VENV)/bin
PROTO_FILES := $(wildcard proto/yrd/interop/v1/*.proto)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)

.PHONY: demo test install proto proto-check lint typecheck buf-lint buf-breaking buf-baseline pytest chromium bench fuzz-long fuzz-atheris faults clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/yrdgw demo

## Regenerate Python code and .pyi stubs from proto/ (never edit the output by hand).
proto: $(STAMP)
	$(PY) -m gateway.tools.genproto proto

## Fail when the checked-in generated code differs from what the pinned generator produces.
proto-check: $(STAMP)
	$(PY) -m gateway.tools.genproto --check proto

buf-lint: $(STAMP)
	$(BIN)/buf lint

## The contract must stay compatible with the committed baseline image.
buf-breaking: $(STAMP)
	$(BIN)/buf breaking --against proto/baseline.binpb

## Publish the current contract as the new baseline (only after a deliberate, reviewed change).
buf-baseline: $(STAMP)
	$(BIN)/buf build -o proto/baseline.binpb

lint: $(STAMP)
	$(BIN)/ruff check gateway adapters mutual_recognition tests bench
	$(BIN)/ruff format --check gateway adapters mutual_recognition tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

## The console's browser tests drive Debian's Chromium (never a downloaded browser build).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

pytest: $(STAMP) chromium
	$(BIN)/pytest

test: proto-check buf-lint buf-breaking lint typecheck pytest

bench: $(STAMP)
	$(PY) -m bench

## The fuzz tests with random inputs and 20 times the examples `make test` runs.
fuzz-long: $(STAMP)
	YRDGW_FUZZ_PROFILE=yrdgw-fuzz-long $(BIN)/pytest tests/fuzz -q --timeout=3600

## Coverage-guided fuzzing (atheris/libFuzzer) of each adapter's parser; FUZZ_RUNS per region.
FUZZ_RUNS ?= 50000
fuzz-atheris: $(STAMP)
	$(PIP) install -q -e '.[dev,fuzz]'
	for region in 310000 320000 330000 340000; do \
		$(PY) -m tests.fuzz.atheris_$$region -runs=$(FUZZ_RUNS) || exit 1; \
	done

## Crash harness, long version: FAULT_SEEDS seeds of FAULT_TRANSFERS transfers with FAULT_KILLS
## SIGKILLs each, on SQLite and PostgreSQL; prints the figures (FAULT_SEED=N replays from seed N).
FAULT_SEEDS ?= 3
FAULT_TRANSFERS ?= 2000
FAULT_KILLS ?= 10
faults: $(STAMP)
	$(PY) -m tests.faults.crash --seeds $(FAULT_SEEDS) --transfers $(FAULT_TRANSFERS) \
		--kills $(FAULT_KILLS) $(if $(FAULT_SEED),--seed $(FAULT_SEED))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
