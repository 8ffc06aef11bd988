# The two commands: `make run` serves the demo, `make test` runs the whole suite.
# Both set themselves up through `make setup` (idempotent).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROTOS := $(wildcard proto/medservice/v1/*.proto)
GEN_STAMP := medservice/v1/.generated
SETUP_STAMP := $(VENV)/.installed

.PHONY: setup run test test-postgres lint typecheck bench proto clean

setup: $(SETUP_STAMP) $(GEN_STAMP)

$(SETUP_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# Generated code is built from proto/, never committed (medservice/v1/ is git-ignored).
# google/api/{annotations,http}.proto (the HTTP mapping) and google/rpc/status.proto (a
# batch's per-item status) come from the installed googleapis-common-protos, copied where
# protoc and buf find them (git-ignored); their Python code is that package's.
$(GEN_STAMP): $(PROTOS) $(SETUP_STAMP)
	@rm -rf medservice/v1 proto/google && mkdir -p medservice/v1 proto/google/api proto/google/rpc
	@d="$$($(PY) -c 'import google.api.http_pb2 as m, os; print(os.path.dirname(m.__file__))')" \
		&& cp "$$d/annotations.proto" "$$d/http.proto" proto/google/api/ \
		&& cp "$$d/../rpc/status.proto" proto/google/rpc/
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m grpc_tools.protoc -I proto --python_out=. --grpc_python_out=. \
		--mypy_out=quiet:. --mypy_grpc_out=quiet:. $(PROTOS)
	@touch medservice/v1/__init__.py $@

proto: $(GEN_STAMP)

run: setup
	$(VENV)/bin/medservice serve --demo

test: setup
	$(VENV)/bin/pytest

lint: setup
	cd proto && ../$(VENV)/bin/buf lint
	$(VENV)/bin/ruff check medservice clients tests bench
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) medservice/v1 proto/google var .pytest_cache .mypy_cache .ruff_cache
