# Two entry points (see README): `make demo` runs the main job (`mertk demo`) on the embedded synthetic benchmark,
# `make test` runs the test suite. Both create the virtual environment first if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exact versions with hashes of every runtime, test and build dependency; the venv is exactly this.
LOCK := requirements.lock
LOCK_TOOLS := .venv-lock

.PHONY: demo test venv lock browser clean

# A fresh venv from the lock; mertk itself is built with the locked setuptools (no isolated build env),
# and `pip check` fails when pyproject.toml asks for something the lock lacks (run `make lock`).
venv: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	$(PY) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

# Re-resolve the lock from pyproject.toml, keeping the current pins where still allowed;
# `make lock UPGRADE=1` moves every pin to the newest allowed release. pip-tools rather than uv:
# it resolves with pip itself, so it sees pip's configured find-links (the local torch CPU wheel,
# whose hash is the file's) exactly as the install does, and it writes pip's --require-hashes format.
lock:
	$(PY) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet pip-tools==7.6.2
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes \
	  --allow-unsafe --strip-extras --no-emit-index-url --extra test --build-deps-for editable \
	  $(if $(UPGRADE),--upgrade) --output-file $(LOCK) pyproject.toml

demo: $(STAMP)
	$(BIN)/mertk demo --out out/demo

# Debian's Chromium for the real-browser test of the HTML report (installed when missing and apt-get is there).
browser:
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(LOCK_TOOLS) out .pytest_cache
