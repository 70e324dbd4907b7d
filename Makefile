# Two entry points (see README): `make demo` runs the main job on the embedded synthetic benchmark,
# `make test` runs the test suite. Both create the virtual environment first if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mertk synth out/synth --seed 0
	$(BIN)/mertk info megc2019 out/synth
	$(BIN)/mertk prepare megc2019 out/synth --model laenet --cache out/cache

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) out .pytest_cache
