# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
BIN := $(VENV)/bin
PROTO_FILES := $(wildcard proto/yrd/interop/v1/*.proto)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)

.PHONY: demo test install proto proto-check lint typecheck buf-lint buf-breaking buf-baseline pytest chromium bench clean

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
