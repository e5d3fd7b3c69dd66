# The few verbs a newcomer needs. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# Whether the Docker engine offers gVisor's runtime (`make gvisor` registers it).
RUNSC_REGISTERED := docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'

.DEFAULT_GOAL := help
.PHONY: help setup system-deps images up down test lint fmt bench soak gvisor clean

help:  ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## create .venv and install grader with its dev tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

system-deps:  ## install debootstrap, redis-server, docker-compose, chromium (Debian packages, root)
	@PATH="$$PATH:/usr/sbin:/sbin"; command -v debootstrap >/dev/null && command -v redis-server >/dev/null \
	  && command -v docker-compose >/dev/null && command -v chromedriver >/dev/null \
	  || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      debootstrap redis-server docker-compose chromium chromium-driver >/dev/null)

images: setup system-deps  ## build every environment image offline (no-op when up to date)
	$(BIN)/grader images build

up: images  ## start Redis, the API and a worker (docker-compose); prints the URL and a key
	$(BIN)/grader images build-service
	$(BIN)/grader deploy env
	docker-compose up -d
	$(BIN)/grader deploy wait

down:  ## stop the docker-compose stack (the Redis volume is kept)
	docker-compose down

test: images  ## build what is missing, then run the whole test suite (real Docker)
	$(BIN)/python -m pytest

bench: images system-deps  ## benchmark vs docker run and epicbox, q5 isolated, runsc if registered (bench/results/)
	$(BIN)/python -c 'import matplotlib' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.isolated
	@if $(RUNSC_REGISTERED); then $(BIN)/python -m bench.runsc; \
	  else echo "runsc not registered: skipping the runsc row (make gvisor)"; fi

soak: images system-deps  ## fault-injection soak: 1000 submissions while workers and Redis are SIGKILLed
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

lint: setup  ## ruff, formatting and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: setup  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

gvisor: setup  ## install gVisor (Debian runsc) and register it with the Docker engine (root)
	@command -v runsc >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null)
	$(BIN)/grader deploy gvisor

clean:  ## remove the virtualenv and caches (images stay; see `grader images list`)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
