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
FOVS        ?=
RUN_ARGS    ?=
# EXECUTOR=batch: the deployment (the module's name_prefix) whose SSM parameter says where to run.
DEPLOYMENT  ?=

.PHONY: help venv run estimate demo test test-fast test-slow test-slurm lint docs bench clean

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

$(VENV)/.installed-test: $(VENV)/.installed workers/constraints-test.txt
	$(PY) -m pip install --quiet -c workers/constraints.txt -c workers/constraints-test.txt -e 'workers[test]'
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
LAUNCH := STARFISH_BATCH_VIA_MAKE=1 $(PY) scripts/starfish_workflow.py --executor "$(EXECUTOR)" \
    $(if $(strip $(DEPLOYMENT)),--deployment "$(DEPLOYMENT)")

# FOVS=NAME,... runs those FOVs alone: a partial run, to try a recipe (or a fix) first.
SUBSET = $(if $(strip $(FOVS)),--fovs "$(FOVS)")
# A resume reruns the run's own recipe: a RECIPE, EXPERIMENT or FOVS typed with RESUME= goes to the
# launcher, which refuses it and says why, rather than being dropped in silence.
GIVEN = $(filter command line,$(origin $(1)))
RESUME_REFUSED = $(if $(call GIVEN,RECIPE),--recipe "$(RECIPE)") \
    $(if $(strip $(EXPERIMENT)),--experiment-url "$(EXPERIMENT)") $(SUBSET)

ifneq ($(strip $(RESUME)),)
run: $(VENV)/.installed  ## run the demo, or EXPERIMENT=... RECIPE=... RESULTS=... [FOVS=A,B]; RESUME=RUN_ID continues a run
	$(LAUNCH) --resume "$(RESUME)" --results-url "$(RESULTS)" $(RESUME_REFUSED) $(RUN_ARGS)
else ifeq ($(strip $(EXPERIMENT)),)
run: $(VENV)/.installed $(DEMO_DIR)/experiment.json
	$(LAUNCH) --experiment-url "$(DEMO_DIR)/experiment.json" --recipe "$(RECIPE)" \
	    --results-url "$(RESULTS)" --ground-truth "$(DEMO_DIR)/ground_truth.csv" $(SUBSET) $(RUN_ARGS)
else
run: $(VENV)/.installed
	$(LAUNCH) --experiment-url "$(EXPERIMENT)" --recipe "$(RECIPE)" --results-url "$(RESULTS)" $(SUBSET) $(RUN_ARGS)
endif

# The estimate: a few FOVs (SAMPLE, default 3) processed as the start of a run, and the whole
# run's time, memory, cost and size predicted; `make run RESUME=<its run id>` finishes it.
SAMPLE ?= 3
ESTIMATE = STARFISH_BATCH_VIA_MAKE=1 $(PY) scripts/starfish_workflow.py estimate --executor "$(EXECUTOR)" \
    --recipe "$(RECIPE)" --results-url "$(RESULTS)" --sample "$(SAMPLE)"
ifeq ($(strip $(EXPERIMENT)),)
estimate: $(VENV)/.installed $(DEMO_DIR)/experiment.json  ## predict a run's time, memory, cost from SAMPLE=3 FOVs (EXPERIMENT=... RECIPE=... RESULTS=...)
	$(ESTIMATE) --experiment-url "$(DEMO_DIR)/experiment.json" $(RUN_ARGS)
else
estimate: $(VENV)/.installed
	$(ESTIMATE) --experiment-url "$(EXPERIMENT)" $(RUN_ARGS)
endif

test: $(VENV)/.installed-test $(CHECKOV_VENV)/.installed $(LINT_VENV)/bin/hadolint  ## lint and every test but the slow and container ones (about 15 minutes on 2 cores)
	scripts/ci/install_chromium.sh
	$(VENV)/bin/ruff check workers scripts tests examples
	$(PY) scripts/gen_tf_docs.py --check
	$(PY) -m pytest -q -ra --durations=25 -m "not e2e and not slow" tests

test-slow: $(VENV)/.installed-test  ## Terraform applied to moto (each example, the deployments, the upgrade) and the long Slurm cases (CI runs it after make test)
	$(PY) -m pytest -q -ra --durations=10 -m slow tests

test-fast: $(VENV)/.installed-test  ## the Python tests without Terraform
	$(PY) -m pytest -q -ra tests -m "not terraform and not e2e"

test-slurm: $(VENV)/.installed-test  ## the Slurm executor's tests on a one-node Slurm (as root), the long cases too
	$(PY) -m pytest -q -ra -m slurm tests

lint: $(VENV)/.installed-test  ## ruff, the largest modules/classes/functions, terraform fmt, docs/terraform.md's Inputs/Outputs tables
	$(VENV)/bin/ruff check workers scripts tests examples
	$(PY) scripts/code_size.py --check
	terraform fmt -check -recursive
	$(PY) scripts/gen_tf_docs.py --check

docs:  ## rewrite docs/terraform.md's Inputs/Outputs tables from the module's *.tf files
	$(PYTHON) scripts/gen_tf_docs.py

bench: $(VENV)/.installed-test  ## merge, worker, experiment-reading, report.html, claim-race, overlapping-FOV and packed-child benchmarks; BENCH_FULL=1 adds 10,000 FOVs
	$(PY) scripts/bench/merge.py
	$(PY) scripts/bench/process_fov.py
	$(PY) scripts/bench/fov_io.py
	$(PY) scripts/bench/report.py
	$(PY) scripts/bench/estimate.py
	$(PY) scripts/bench/claims.py
	$(PY) scripts/bench/overlap.py
	$(PY) scripts/bench/packing.py

clean:  ## remove what the build made (virtualenvs, the demo); never results
	rm -rf "$(DEMO_DIR)" $(VENV) $(CHECKOV_VENV) $(LINT_VENV)

