# Two entry points (see README): `make demo` runs the main job (`mertk demo`) on the embedded synthetic benchmark,
# `make test` runs the test suite. Both create the virtual environment first if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv browser clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mertk demo --out out/demo

# Debian's Chromium for the real-browser test of the HTML report (installed when missing and apt-get is there).
browser:
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) out .pytest_cache
