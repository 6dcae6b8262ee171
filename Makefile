# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install clean bench images container-test

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/stableseg demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .stableseg

# --- container images -------------------------------------------------------------------------------------------
# `make images`: both images with a running docker, else podman. Offline (no index): put wheels in wheelhouse/ and
# IMAGE_BUILD_ARGS="--build-arg OFFLINE=1 --build-arg BASE_IMAGE=<a Python 3.11 image you have>".
CONTAINER_ENGINE ?= $(shell if docker info >/dev/null 2>&1; then echo docker; elif command -v podman >/dev/null 2>&1; then echo podman; fi)
IMAGE_BUILD_ARGS ?=
SERVICE_IMAGE    ?= stableseg:0.1.0
TRAINER_IMAGE    ?= stableseg-trainer:0.1.0
# podman keeps HEALTHCHECK only in the docker image format
ENGINE_FORMAT = $(if $(findstring podman,$(CONTAINER_ENGINE)),--format docker,)

images:
	@test -n "$(CONTAINER_ENGINE)" || { echo "error: no container engine: neither a running docker nor podman"; exit 1; }
	$(CONTAINER_ENGINE) build $(ENGINE_FORMAT) $(IMAGE_BUILD_ARGS) --target service -t $(SERVICE_IMAGE) .
	$(CONTAINER_ENGINE) build $(ENGINE_FORMAT) $(IMAGE_BUILD_ARGS) --target trainer -t $(TRAINER_IMAGE) .

# Builds the images offline with podman and runs the compose services against the host's broker, Redis and
# PostgreSQL (tests/containers/); not part of `make test`.
container-test: $(STAMP)
	$(BIN)/python -m tests.containers
