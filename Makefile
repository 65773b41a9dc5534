# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Every install comes from the committed uv.lock (runtime, dev tools, type stubs, pip, setuptools,
# wheel and uv itself): `make lock` is the only way the versions move.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
UV := $(BIN)/uv
# uv installs into $(VENV), with interpreters from this machine, never downloaded ones.
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never
UV_STAMP := $(VENV)/.uv-$(shell sha256sum uv.lock | cut -c1-16)
# The other interpreters `make test-matrix` runs the unit, storage and integration tests on.
MATRIX_PYTHONS ?= 3.12 3.13
MATRIX_TESTS ?= tests/unit tests/storage tests/integration

.PHONY: demo test test-matrix install install-demo lock lock-check proto proto-check lint typecheck \
	buf-lint buf-breaking buf-baseline imports pytest chromium bench fuzz-long fuzz-atheris faults hostile failover \
	vectors reasons schema templates clean

# uv itself comes from the lock: the version and the hashes uv.lock records for it, installed by
# the interpreter's own pip into the virtual environment (then `uv sync` keeps it, and the locked pip,
# setuptools and wheel, in the tools group). Re-run whenever uv.lock changes.
$(UV_STAMP): uv.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "bootstrap: uv from uv.lock"
	@$(PYTHON) .ci/lock_requirement.py uv.lock uv > $(VENV)/uv-requirement.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --only-binary :all: \
		--require-hashes -r $(VENV)/uv-requirement.txt
	@rm -f $(VENV)/.uv-*
	@touch $@

## Fail, with what to do, when pyproject.toml and uv.lock disagree.
lock-check: $(UV_STAMP)
	@$(UV) lock --check --quiet || { \
		echo "error: pyproject.toml and uv.lock disagree; run 'make lock' and commit uv.lock" >&2; exit 1; }

## What the demo needs: the runtime dependencies (and the locked installer), nothing else.
install-demo: lock-check
	$(UV) sync --locked --inexact --no-install-project
	$(UV) sync --locked --inexact

## Everything the checks and tests need, exactly: packages not in the lock are removed.
install: lock-check
	$(UV) sync --locked --inexact --no-install-project --group dev
	$(UV) sync --locked --group dev

## Refresh uv.lock deliberately (newest releases within pyproject.toml's ranges), then install it.
lock: $(UV_STAMP)
	$(UV) lock --upgrade
	$(MAKE) install

demo: install-demo
	$(BIN)/yrdgw demo

## Regenerate Python code and .pyi stubs from proto/ (never edit the output by hand).
proto: install
	$(PY) -m gateway.tools.genproto proto
	$(PY) -m gateway.tools.jsonschema docs/schema

## Regenerate the JSON Schemas (docs/schema) and docs/data-dictionary.md from the descriptors
## (tests/unit/test_jsonschema_docs.py fails when the committed files differ).
schema: install
	$(PY) -m gateway.tools.jsonschema docs/schema

## Regenerate the protocol's test vectors (docs/vectors/*.json) from the implementation.
## (`make test` checks them both ways: tests/unit/test_vectors.py.)
vectors: install
	$(PY) -m gateway.tools.vectors docs/vectors

## Render docs/reasons.md from the reason catalogue (gateway/reasons/); tested in `make test`.
reasons: install
	$(PY) -m gateway.tools.reasons docs/reasons.md

## Regenerate the external-list templates (docs/templates/external-list.csv and .xlsx) from the
## columns of adapters/external_list.py (tests/adapters/test_external_list.py checks them).
templates: install
	$(PY) -m gateway.tools.external_template docs/templates

## Fail when the checked-in generated code differs from what the pinned generator produces.
proto-check: install
	$(PY) -m gateway.tools.genproto --check proto

buf-lint: install
	$(BIN)/buf lint

## The contract must stay compatible with the committed baseline image.
buf-breaking: install
	$(BIN)/buf breaking --against proto/baseline.binpb

## Publish the current contract as the new baseline (only after a deliberate, reviewed change).
buf-baseline: install
	$(BIN)/buf build -o proto/baseline.binpb

lint: install
	$(BIN)/ruff check gateway adapters mutual_recognition tests bench
	$(BIN)/ruff format --check gateway adapters mutual_recognition tests bench

typecheck: install
	$(BIN)/mypy

## The layer contracts in .importlinter: entrypoints -> services -> storage, a domain and adapters
## free of the gateway, a client SDK free of the server.
imports: install
	$(BIN)/lint-imports

## The console's browser tests drive Debian's Chromium (never a downloaded browser build).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

pytest: install chromium
	$(BIN)/pytest

test: proto-check buf-lint buf-breaking lint imports typecheck pytest

## The unit, storage and integration tests on the other supported interpreters, each in its own
## virtual environment synced from the same lock.
test-matrix: lock-check
	@for v in $(MATRIX_PYTHONS); do \
		echo "== Python $$v"; \
		py=$$(command -v pyenv >/dev/null && \
			PYENV_VERSION=$$(pyenv versions --bare | grep -E "^$$v\." | sort -V | tail -n1) \
			pyenv which python$$v 2>/dev/null || echo python$$v); \
		env=$(abspath $(VENV))-$$v; \
		UV_PROJECT_ENVIRONMENT=$$env $(UV) sync --locked --python $$py --inexact \
			--no-install-project --group dev && \
		UV_PROJECT_ENVIRONMENT=$$env $(UV) sync --locked --python $$py --group dev && \
		$$env/bin/pytest -q -p no:cacheprovider $(MATRIX_TESTS) || exit 1; \
	done

## Every benchmark (`python -m bench` runs each module of bench/); reconciliation at a million blocks
## (and at 100,000, for the growth). Not part of `make test`.
bench: install
	YRDGW_BENCH_RECONCILE_BLOCKS=1000000 $(PY) -m bench

## The fuzz tests with random inputs and 20 times the examples `make test` runs.
fuzz-long: install
	YRDGW_FUZZ_PROFILE=yrdgw-fuzz-long $(BIN)/pytest tests/fuzz -q --timeout=3600

## The hostile-request test (every RPC and signed body, one field hostile at a time, both
## backends) with every hostile value of each kind, not only the first few `make test` sends;
## prints the counts per RPC.
hostile: install
	YRDGW_HOSTILE=full $(BIN)/pytest tests/hostile -q -s --timeout=1800

## Coverage-guided fuzzing (atheris/libFuzzer) of each adapter's parser; FUZZ_RUNS per region.
FUZZ_RUNS ?= 50000
fuzz-atheris: install
	$(UV) sync --locked --group dev --group fuzz
	for region in 310000 320000 330000 340000; do \
		$(PY) -m tests.fuzz.atheris_$$region -runs=$(FUZZ_RUNS) || exit 1; \
	done

## Crash harness, long version: FAULT_SEEDS seeds of FAULT_TRANSFERS transfers with FAULT_KILLS
## SIGKILLs each, on SQLite and PostgreSQL; prints the figures (FAULT_SEED=N replays from seed N).
FAULT_SEEDS ?= 3
FAULT_TRANSFERS ?= 2000
FAULT_KILLS ?= 10
faults: install
	$(PY) -m tests.faults.crash --seeds $(FAULT_SEEDS) --transfers $(FAULT_TRANSFERS) \
		--kills $(FAULT_KILLS) $(if $(FAULT_SEED),--seed $(FAULT_SEED))

## Failover harness, long version: FAILOVER_SEEDS runs of FAILOVER_TRANSFERS transfers, each with
## FAILOVER_COUNT SIGKILLs of the PostgreSQL primary (its synchronous standby promoted, a new one
## rebuilt), on servers the harness starts itself; prints the figures (FAILOVER_SEED=N replays).
FAILOVER_SEEDS ?= 2
FAILOVER_TRANSFERS ?= 600
FAILOVER_COUNT ?= 4
failover: install
	$(PY) -m tests.failover.run --seeds $(FAILOVER_SEEDS) --transfers $(FAILOVER_TRANSFERS) \
		--failovers $(FAILOVER_COUNT) $(if $(FAILOVER_SEED),--seed $(FAILOVER_SEED))

clean:
	rm -rf $(VENV) $(VENV)-3.* .pytest_cache .mypy_cache .ruff_cache var
