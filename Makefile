# starfish-batch: `make run` runs the demo (or your experiment) on this machine; `make test` checks it all.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
CHECKOV_VENV ?= .venv-checkov
LINT_VENV   ?= .venv-lint

# What `make run` runs. With none given: the bundled synthetic demo and the tutorial's ISS recipe.
DEMO_DIR    ?= demo
EXPERIMENT  ?=
RECIPE      ?= examples/iss_recipe.py
RESULTS     ?= results
EXECUTOR    ?= local
RESUME      ?=
RUN_ARGS    ?=

.PHONY: help venv run demo test test-fast lint bench clean

# images, push, e2e and the container helpers
include mk/containers.mk

help:  ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):.*## /\1\t/' | column -t -s $$'\t'

# `make run` needs the package alone; `make test` adds the test tools to the same virtualenv.
$(VENV)/.installed: workers/pyproject.toml workers/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c workers/constraints.txt -e workers
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -c workers/constraints.txt -e 'workers[test]'
	touch $@

venv: $(VENV)/.installed-test  ## create .venv with the package and its test tools

$(CHECKOV_VENV)/.installed: tests/terraform/requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r tests/terraform/requirements-checkov.txt
	touch $@

$(DEMO_DIR)/experiment.json: | $(VENV)/.installed
	$(PY) scripts/demo/make_demo_experiment.py "$(DEMO_DIR)"

demo: $(DEMO_DIR)/experiment.json  ## write the synthetic demo experiment (and its ground truth)

# The launcher is told it runs under make, so the commands it suggests are `make run ...` too.
LAUNCH := STARFISH_BATCH_VIA_MAKE=1 $(PY) scripts/starfish_workflow.py --executor "$(EXECUTOR)"

ifneq ($(strip $(RESUME)),)
run: $(VENV)/.installed  ## run the demo, or EXPERIMENT=... RECIPE=... RESULTS=...; RESUME=RUN_ID continues a run
	$(LAUNCH) --resume "$(RESUME)" --results-url "$(RESULTS)" $(RUN_ARGS)
else ifeq ($(strip $(EXPERIMENT)),)
run: $(VENV)/.installed $(DEMO_DIR)/experiment.json
	$(LAUNCH) --experiment-url "$(DEMO_DIR)/experiment.json" --recipe "$(RECIPE)" \
	    --results-url "$(RESULTS)" --ground-truth "$(DEMO_DIR)/ground_truth.csv" $(RUN_ARGS)
else
run: $(VENV)/.installed
	$(LAUNCH) --experiment-url "$(EXPERIMENT)" --recipe "$(RECIPE)" --results-url "$(RESULTS)" $(RUN_ARGS)
endif

test: $(VENV)/.installed-test $(CHECKOV_VENV)/.installed $(LINT_VENV)/bin/hadolint  ## everything CI checks (about 12 minutes on 2 cores)
	scripts/ci/install_chromium.sh
	$(VENV)/bin/ruff check workers scripts tests examples
	$(PY) -m pytest -q -ra tests

test-fast: $(VENV)/.installed-test  ## the Python tests without Terraform
	$(PY) -m pytest -q -ra tests -m "not terraform and not e2e"

lint: $(VENV)/.installed-test  ## ruff and terraform fmt
	$(VENV)/bin/ruff check workers scripts tests examples
	terraform fmt -check -recursive

bench: $(VENV)/.installed-test  ## merge, worker, experiment-reading, report.html and packed-child benchmarks; BENCH_FULL=1 adds 10,000 FOVs
	$(PY) scripts/bench/merge.py
	$(PY) scripts/bench/process_fov.py
	$(PY) scripts/bench/fov_io.py
	$(PY) scripts/bench/report.py
	$(PY) scripts/bench/estimate.py
	$(PY) scripts/bench/packing.py

clean:  ## remove what the build made (virtualenvs, the demo); never results
	rm -rf "$(DEMO_DIR)" $(VENV) $(CHECKOV_VENV) $(LINT_VENV)

